# The tests run against the real simpert command line. When it cannot be found they
# skip, unless SIMPERT_REQUIRE_R=1 (CI), where that is an error.
need_cli <- function() {
  if (!simpert::simpert_available()) {
    if (identical(Sys.getenv("SIMPERT_REQUIRE_R"), "1")) {
      stop("SIMPERT_REQUIRE_R=1 but the simpert command line cannot be found")
    }
    testthat::skip("the simpert command line is not available")
  }
}

# A tiny screen scenario (seconds to simulate).
tiny_scenario <- function() {
  path <- file.path(tempdir(), "simpert-tiny.toml")
  if (!file.exists(path)) {
    writeLines(c(
      "[scenario]", 'name = "tiny"', 'kind = "screen"', "test_fraction = 0.5", "",
      "[params]", "n_genes = 60", "n_perturbations = 8", "n_control_cells = 60",
      "cells_per_perturbation = 15", "p_effect = 0.2", "effect_size = 1.5", "n_replicates = 2"
    ), path)
  }
  path
}

# A hand-made screen (independent of the simulator).
handmade_se <- function(n_genes = 12L, n_per = 3L) {
  set.seed(1)
  perts <- c("control", "KD_a", "KD_b")
  groups <- rep(perts, each = n_per)
  counts <- matrix(stats::rpois(n_genes * length(groups), 20), nrow = n_genes,
                   dimnames = list(sprintf("g%05d", seq_len(n_genes) - 1L),
                                   sprintf("s%02d", seq_along(groups))))
  storage.mode(counts) <- "integer"
  cd <- S4Vectors::DataFrame(
    perturbation = factor(groups, levels = perts),
    is_control = groups == "control",
    target = ifelse(groups == "control", "", ifelse(groups == "KD_a", "g00001", "g00002")),
    replicate = rep(seq_len(n_per) - 1L, length(perts)),
    size_factor = stats::runif(length(groups), 0.5, 1.5),
    row.names = colnames(counts)
  )
  lfc <- matrix(stats::rnorm(2 * n_genes), nrow = 2,
                dimnames = list(perts[-1], rownames(counts)))
  SummarizedExperiment::SummarizedExperiment(
    assays = list(counts = counts), colData = cd,
    rowData = S4Vectors::DataFrame(base_mean = stats::runif(n_genes), row.names = rownames(counts)),
    metadata = list(truth = list(log2fc = lfc, targets = c(KD_a = "g00001", KD_b = "g00002")),
                    control = "control")
  )
}
