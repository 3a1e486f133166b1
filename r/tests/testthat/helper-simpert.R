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
tiny_scenario <- function(name = "tiny", n_genes = 60L) {
  path <- file.path(tempdir(), paste0("simpert-", name, ".toml"))
  if (!file.exists(path)) {
    writeLines(c(
      "[scenario]", sprintf('name = "%s"', name), 'kind = "screen"', "test_fraction = 0.5", "",
      "[params]", sprintf("n_genes = %d", n_genes), "n_perturbations = 8", "n_control_cells = 60",
      "cells_per_perturbation = 15", "p_effect = 0.2", "effect_size = 1.5", "n_replicates = 2"
    ), path)
  }
  path
}

# A hand-made pseudobulk screen in the package's conventions (independent of the simulator).
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
    target = ifelse(groups == "control", NA, ifelse(groups == "KD_a", "g00001", "g00002")),
    replicate = factor(rep(seq_len(n_per), length(perts))),
    size_factor = stats::runif(length(groups), 0.5, 1.5),
    row.names = colnames(counts)
  )
  lfc <- matrix(stats::rnorm(2 * n_genes), ncol = 2, dimnames = list(rownames(counts), perts[-1]))
  rd <- S4Vectors::DataFrame(base_mean = stats::runif(n_genes), row.names = rownames(counts))
  rd$true_log2fc <- lfc
  rd$is_target <- rownames(counts) %in% c("g00001", "g00002")
  tab <- S4Vectors::DataFrame(target = c("g00001", "g00002"), target_index = c(2L, 3L),
                              row.names = perts[-1])
  SummarizedExperiment::SummarizedExperiment(
    assays = list(counts = counts), colData = cd, rowData = rd,
    metadata = list(truth = list(perturbations = tab, targets = c(KD_a = "g00001", KD_b = "g00002")),
                    control = "control")
  )
}

# A screen of cells as a SingleCellExperiment of sparse counts, built by hand.
handmade_sce <- function(n_genes = 30L, cells = 8L, perts = c("ctrl", "P1", "P2", "P3")) {
  set.seed(2)
  groups <- rep(perts, each = cells)
  counts <- Matrix::rsparsematrix(n_genes, length(groups), density = 0.4,
                                  rand.x = function(n) stats::rpois(n, 5) + 1)
  dimnames(counts) <- list(paste0("gene", seq_len(n_genes)), paste0("cell", seq_along(groups)))
  SingleCellExperiment::SingleCellExperiment(
    assays = list(counts = counts),
    colData = S4Vectors::DataFrame(guide_target = factor(groups, levels = perts),
                                   batch = factor(rep(rep(1:2, each = cells / 2), length(perts)))))
}
