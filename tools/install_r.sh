#!/usr/bin/env bash
# Install R and the R packages simpert needs from Debian's packages, when absent.
# Usage: tools/install_r.sh            (idempotent; does nothing when all are present)
set -euo pipefail

R_DEBS="r-base-core r-base-dev r-bioc-deseq2 r-cran-testthat r-cran-mixsqp \
r-cran-jsonlite r-cran-matrix r-bioc-summarizedexperiment r-cran-roxygen2 \
r-bioc-singlecellexperiment r-cran-codetools \
r-cran-knitr r-cran-rmarkdown libopenblas0-pthread pandoc qpdf"

have_all() {
  command -v Rscript >/dev/null 2>&1 || return 1
  Rscript -e 'for (p in c("DESeq2","testthat","mixsqp","jsonlite","Matrix","SummarizedExperiment","SingleCellExperiment","codetools","knitr","rmarkdown")) if (!requireNamespace(p, quietly=TRUE)) quit(status=1)' \
    >/dev/null 2>&1
}

if have_all; then
  echo "R and its packages are present: $(Rscript --version 2>&1 | head -n1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "error: R (Rscript with DESeq2, testthat, mixsqp) is missing and cannot be installed:" >&2
    echo "       installing Debian packages needs root or password-less sudo. Run as root:" >&2
    echo "       apt-get update && apt-get install -y $R_DEBS" >&2
    exit 2
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: R is missing and this is not a Debian-like system (no apt-get)." >&2
  echo "       Install R >= 4.2 with DESeq2, testthat, mixsqp, jsonlite, SummarizedExperiment, SingleCellExperiment." >&2
  exit 2
fi
echo "Installing R from Debian's packages: $R_DEBS"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $R_DEBS >/dev/null
have_all || { echo "error: R was installed but a required R package does not load" >&2; exit 2; }
echo "R installed: $(Rscript --version 2>&1 | head -n1)"
