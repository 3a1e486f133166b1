#' Simulate a perturbation screen with known truth
#'
#' Runs `simpert simulate` and returns the screen in Bioconductor's containers: cells as
#' a `SingleCellExperiment` (sparse counts), pseudobulk samples as a
#' `SummarizedExperiment` with a dense integer matrix that `DESeq2::DESeqDataSet()`
#' takes as it is (`perturbation` is a factor whose first level is the control).
#'
#' @param scenario A scenario name (see [scenarios()]), a path to a scenario TOML or
#'   JSON file (e.g. from [estimate_params()]), or a named list of simulator
#'   parameters (then `kind` says which simulator draws them).
#' @param params A named list of parameters that override the scenario's (for example
#'   `list(n_genes = 200, n_perturbations = 10)`); see [scenario_params()] for the
#'   names.
#' @param seed A non-negative whole number; the same seed gives the same counts.
#' @param pseudobulk If `TRUE`, sum the cells of each perturbation and replicate into
#'   pseudobulk samples (a dense integer count matrix).
#' @param kind Simulator used when `scenario` is a list: `"screen"`, `"noise_only"` or
#'   `"var_network"`.
#' @param n_replicates Biological replicates of a `"screen"` simulation: `NULL` keeps
#'   the scenario's own value; the default, 3, applies when the scenario leaves it at 1
#'   (the named scenarios do), so that DESeq2 has replicates to estimate dispersions
#'   from. A value in `params` always wins.
#' @return A `SingleCellExperiment` (cells) or `SummarizedExperiment` (pseudobulk):
#'   assay `counts` (genes x cells or samples); `colData` with `perturbation`,
#'   `is_control`, `target` (`NA` for controls), `guide`, `replicate` (a factor, levels
#'   `1`, `2`, ...) and the per-cell truth (`size_factor`, `knockdown`, `escaped`) or
#'   per-sample `n_cells`; `rowData` with the per-gene truth (`base_mean`, `dispersion`,
#'   `shared_log2fc`, `is_target`) and the true log2 fold changes as gene x perturbation
#'   matrices `true_log2fc` and `true_specific_log2fc`; `metadata` with `truth` (the
#'   `perturbations` table with each `target` and its 1-based `target_index`,
#'   `targets`, `replicate_log2fc`, `guides`), `params`, `seed`, `control`, `kind`,
#'   `version`. See [read_screen_dir()].
#' @examplesIf simpert_available()
#' sce <- simulate_screen(params = list(n_genes = 50L, n_perturbations = 3L), seed = 1)
#' sce
#' table(sce$perturbation, sce$replicate)
#' se <- simulate_screen(params = list(n_genes = 50L, n_perturbations = 3L), seed = 1,
#'                       pseudobulk = TRUE)
#' SummarizedExperiment::rowData(se)$true_log2fc[1:3, ]
#' S4Vectors::metadata(se)$truth$perturbations
#' @export
simulate_screen <- function(scenario = "sparse_strong", params = list(), seed = 0L,
                            pseudobulk = FALSE, kind = "screen", n_replicates = 3L) {
  seed <- check_seed(seed)
  check_scalar(pseudobulk, "pseudobulk", "logical")
  check_params(params)
  check_count(n_replicates, "n_replicates", null_ok = TRUE)
  tmp <- scratch_dir("simpert-sim-")
  if (is.list(scenario)) {
    check_params(scenario, "scenario")
    kind <- match.arg(kind, c("screen", "noise_only", "var_network"))
    params <- utils::modifyList(scenario, params)
    scenario <- file.path(tmp, "scenario.json")
    writeLines(jsonlite::toJSON(list(scenario = list(name = "custom", kind = kind),
                                     params = empty_object()),
                                auto_unbox = TRUE), scenario)
  }
  check_scalar(scenario, "scenario", "character")
  if (!is.null(n_replicates) && is.null(params$n_replicates)) {
    info <- scenario_info(scenario)
    if (identical(info$kind, "screen") && identical(as.integer(info$params$n_replicates), 1L)) {
      params$n_replicates <- as.integer(n_replicates)
    }
  }
  out <- file.path(tmp, "screen")
  run_cli(c("simulate", scenario, "-o", out, "--format", "mtx", "--seed", seed,
            if (pseudobulk) "--pseudobulk", set_args(params)))
  read_screen_dir(out)
}

check_params <- function(params, name = "params") {
  if (!is.list(params) || (length(params) && (is.null(names(params)) || any(!nzchar(names(params)))))) {
    stop(sprintf("parameter '%s' must be a named list of simulator parameters; got %s", name,
                 paste(utils::capture.output(utils::str(params)), collapse = " ")), call. = FALSE)
  }
  for (k in intersect(c("n_genes", "n_perturbations", "n_control_cells", "n_replicates",
                        "n_guides", "min_cells"), names(params))) {
    check_count(params[[k]], paste0(name, "$", k), min = if (k %in% c("n_perturbations", "min_cells")) 0L else 1L)
  }
  invisible(params)
}

#' A scenario's simulator parameters
#'
#' Every parameter the simulator of a scenario uses, with the scenario's values and the
#' simulator's defaults for the rest; unknown names in `params` are an error that lists
#' the known ones.
#'
#' @param scenario A scenario name (see [scenarios()]) or a path to a scenario file.
#' @param params A named list of overrides (checked as [simulate_screen()] would).
#' @return A list: `name`, `kind`, `description`, `test_fraction`, `source` and `params`
#'   (a named list).
#' @examplesIf simpert_available()
#' p <- scenario_params("sparse_strong")
#' p$kind
#' str(p$params[c("n_genes", "n_perturbations", "n_replicates", "p_effect")])
#' @export
scenario_params <- function(scenario, params = list()) {
  check_scalar(scenario, "scenario", "character")
  check_params(params)
  out <- run_cli(c("params", scenario, set_args(params)))
  jsonlite::fromJSON(paste(out, collapse = "\n"), simplifyVector = TRUE)
}

# scenario_params() without overrides, remembered for the session (files: until they change).
.scenario_cache <- new.env(parent = emptyenv())

scenario_info <- function(scenario) {
  key <- if (file.exists(scenario)) {
    paste(normalizePath(scenario), file.info(scenario)$mtime, file.info(scenario)$size)
  } else {
    paste(scenario, Sys.getenv("SIMPERT_SCENARIOS"))
  }
  hit <- .scenario_cache[[key]]
  if (is.null(hit)) {
    hit <- scenario_params(scenario)
    assign(key, hit, envir = .scenario_cache)
  }
  hit
}
