#!/usr/bin/env bash
# The whole book as one PDF (_build/latex/book.pdf) from Jupyter Book's LaTeX builder, then its
# check (book/check_pdf.py: every page renders, every chapter title is there, a figure in every
# reproduction chapter). Run from anywhere, after the README's set-up (the Python packages).
#
# TeX comes from Debian's packages: the ones that are missing are installed first with apt-get
# (as root, or through sudo). The chapters' executed outputs come from the same Jupyter cache as the
# HTML build (_build/.jupyter_cache), so after `jupyter-book build .` nothing is executed again.
set -euo pipefail
cd "$(dirname "$0")/.."

# xelatex with the FreeFont OpenType fonts (Sphinx's defaults for xelatex, which reads the
# chapters' unicode as it is); the LaTeX packages that Sphinx and sphinx-jupyterbook-latex load
# (its class needs bbm.sty, which only texlive-fonts-extra ships: about 0.5 GB to download,
# 1.4 GB installed); make and latexmk, which run LaTeX; poppler-utils for the check.
PACKAGES=(make latexmk texlive-xetex texlive-latex-recommended texlive-latex-extra
          texlive-fonts-recommended texlive-fonts-extra texlive-pictures texlive-plain-generic
          fonts-freefont-otf tex-gyre poppler-utils)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build_pdf: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

jupyter-book build . --builder pdflatex -n --keep-going
python book/check_pdf.py _build/latex/book.pdf
