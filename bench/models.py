"""Training-step throughput and peak memory: CRATE vs timm's ViT of the same width, SDPA vs explicit.

Every case uses the CRATE size table's width, heads and depth (``--size tiny``: 384 / 6 / 12), the
ViTs too, so the comparison is at equal width on purpose (cratelib's own ``vit_<size>`` names
follow the narrower official ViT table).

    python bench/models.py                      # CPU defaults: tiny width, patch 16, 224 px, batch 16
    python bench/models.py --size small --batch 64 --device cuda

Each case runs in a fresh subprocess (so peak memory is its own): a few warm-up steps, then timed
forward + backward + AdamW steps. Ratios are printed from the same run. Peak memory is the
process's peak RSS on CPU and ``torch.cuda.max_memory_allocated`` on GPU.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CASES = {
    "crate (sdpa)": ("crate", True),
    "crate (explicit)": ("crate", False),
    "cratelib vit (sdpa)": ("vit", True),
    "timm vit": ("timm", True),
}


def run_case(kind: str, fused: bool, size: str, patch: int, img: int, batch: int, steps: int, device: str) -> dict:
    import timm
    import torch

    import cratelib
    from cratelib.models.registry import CRATE_SIZES

    torch.manual_seed(0)
    dims = CRATE_SIZES[size]
    if kind == "timm":
        model = timm.create_model("vit_base_patch16_224", img_size=img, patch_size=patch, embed_dim=dims["dim"],
                                  depth=dims["depth"], num_heads=dims["num_heads"], num_classes=1000)
    else:
        model = cratelib.create_model(f"{kind}_{size}_patch{patch}", img_size=img, fused_attn=fused,
                                      check_inputs=False, **dims)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, img, img, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    params = sum(p.numel() for p in model.parameters())
    return {"images_per_s": batch * steps / dt, "peak_mib": peak / 2**20, "params_m": params / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="tiny", choices=["nano", "tiny", "small", "base", "large"])
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--img", type=int, default=224)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = ap.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    common = (args.size, args.patch, args.img, args.batch, args.steps, args.device)
    if args.case:
        print(json.dumps(run_case(*CASES[args.case], *common)))
        return
    print(f"training step (fwd+bwd+AdamW): width '{args.size}', patch {args.patch}, {args.img} px, "
          f"batch {args.batch}, {args.steps} steps, device {args.device}")
    results = {}
    for name in CASES:
        cmd = [sys.executable, __file__, "--case", name, "--size", args.size, "--patch", str(args.patch),
               "--img", str(args.img), "--batch", str(args.batch), "--steps", str(args.steps), "--device", args.device]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results[name] = r = json.loads(out.strip().splitlines()[-1])
        print(f"  {name:<22} {r['params_m']:7.2f}M params  {r['images_per_s']:8.1f} img/s  peak {r['peak_mib']:8.0f} MiB")
    crate, timm_vit = results["crate (sdpa)"], results["timm vit"]
    print(f"ratio crate/timm-vit throughput: {crate['images_per_s'] / timm_vit['images_per_s']:.2f}x "
          f"(target >= 1), peak memory {crate['peak_mib'] / timm_vit['peak_mib']:.2f}x")
    expl = results["crate (explicit)"]
    print(f"ratio sdpa/explicit throughput (crate): {crate['images_per_s'] / expl['images_per_s']:.2f}x, "
          f"peak memory {crate['peak_mib'] / expl['peak_mib']:.2f}x")


if __name__ == "__main__":
    main()
