# simpert: the README's commands.
#   make figures   every paper figure from simulated data (FAST=1: the small CI run)
#   make test      every test, Python and R
# Both create .venv and install R from Debian's packages when absent.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.simpert-installed
RLIB := .rlib
R_STAMP := $(RLIB)/.simpert-installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export R_LIBS_USER := $(CURDIR)/$(RLIB)
export MPLBACKEND := Agg
FAST ?=
JOBS ?= 2

.PHONY: all test test-python test-r check-r figures vignettes bench r-deps venv clean help golden mutation coverage docs dist browser-deps

help:
	@echo "make figures [FAST=1]  regenerate the paper figures into paper_figures/out"
	@echo "make test              run every test (Python and R)"
	@echo "make docs              build the documentation site into docs/_build/html (warnings are errors)"
	@echo "make dist              wheel, sdist and the R source package into dist/"
	@echo "make vignettes         render the vignettes to HTML in vignettes/_build"
	@echo "make bench             run the benchmarks (--quick)"
	@echo "make golden            re-make the R DESeq2 golden files"
	@echo "make check-r           R CMD check of the R package in r/"
	@echo "make coverage          Python tests with branch coverage, reported per subpackage"
	@echo "make mutation          mutation testing of de, metrics, sim, calibrate (slow; not in CI)"

r-deps:
	@bash tools/install_r.sh

# R must be present before rpy2 builds against it.
$(STAMP): pyproject.toml | r-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[all]"
	@touch $(STAMP)

venv: $(STAMP)

$(R_STAMP): $(STAMP) $(shell find r -type f 2>/dev/null)
	@mkdir -p $(RLIB)
	R CMD INSTALL --no-multiarch --library=$(RLIB) r >/dev/null
	@touch $(R_STAMP)

test: test-python test-r

test-python: $(STAMP) r-deps
	$(PY) -m pytest -q tests

test-r: $(R_STAMP)
	Rscript -e 'res <- testthat::test_dir("r/tests/testthat", package = "simpert", load_package = "installed", reporter = "summary", stop_on_failure = TRUE)'
	Rscript -e 'for (f in c("vignettes/r_package.Rmd", "r/vignettes/simpert.Rmd")) { out <- tempfile("vignette-"); dir.create(out); rmarkdown::render(f, output_dir = out, intermediates_dir = out, quiet = TRUE); cat("rendered", f, "\n"); unlink(out, recursive = TRUE) }'

check-r: $(R_STAMP)
	rm -rf .rcheck && mkdir -p .rcheck
	cd .rcheck && R CMD build ../r >/dev/null && \
	  _R_CHECK_FORCE_SUGGESTS_=false _R_CHECK_CRAN_INCOMING_REMOTE_=false _R_CHECK_CRAN_INCOMING_=false \
	  _R_CHECK_FUTURE_FILE_TIMESTAMPS_=false _R_CHECK_SYSTEM_CLOCK_=0 R CMD check --as-cran --no-manual simpert_*.tar.gz

figures: $(STAMP) r-deps
	$(PY) -m paper_figures $(if $(FAST),--fast,) --jobs $(JOBS)

vignettes: $(STAMP) $(R_STAMP)
	$(PY) -m vignettes.render

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick || exit 1; done

coverage: $(STAMP) r-deps
	$(PY) -m pytest -q --cov=simpert --cov-branch --cov-report= tests
	$(PY) tools/coverage_table.py --report docs/coverage.md

mutation: $(STAMP) r-deps
	$(PY) tools/mutation.py $(if $(MAX),--max $(MAX),)

# The documentation site: tools/build_docs.py writes the generated pages (API stubs, metric
# pages with their calibration cards, the verdicts, the gallery, the R reference and the R
# vignettes; cached in docs/_build/cache), then Sphinx builds with warnings as errors and
# executes the Python vignettes (cached in docs/_build/jupyter_cache). Missing paper figures
# are made first (make figures FAST=1).
FIGURE_PNGS := $(patsubst paper_figures/%.py,paper_figures/out/%.png,$(wildcard paper_figures/fig*.py))

docs: $(STAMP) $(R_STAMP)
	@for f in $(FIGURE_PNGS); do test -f $$f || { $(MAKE) --no-print-directory figures FAST=1; break; }; done
	@mkdir -p docs/_build
	flock docs/_build/.lock sh -c '$(PY) tools/build_docs.py && $(PY) -m sphinx -W --keep-going -q -b html docs/source docs/_build/html'
	@echo "site: docs/_build/html/index.html"

browser-deps:
	@bash tools/install_browser.sh

# The wheel and sdist (python -m build) and the R source package (R CMD build), into dist/.
# The wheel carries the scenario files (setup.py copies simulations/*.toml into
# simpert/scenarios/); tests/test_dist.py installs it into a fresh virtual environment.
dist: $(STAMP) r-deps
	rm -rf dist && mkdir -p dist
	$(PY) -m build --outdir dist .
	cd dist && R CMD build ../r >/dev/null
	@ls -l dist

golden: $(STAMP) r-deps
	Rscript tests/golden/make_golden.R tests/golden

clean:
	rm -rf $(VENV) $(RLIB) .rcheck paper_figures/out paper_figures/cache vignettes/_build docs/_build dist build
