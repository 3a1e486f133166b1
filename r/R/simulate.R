#' Simulate a perturbation screen with known truth
#'
#' Runs `simpert simulate` and reads the result back as a Bioconductor
#' `SummarizedExperiment`, ready for DESeq2 (`perturbation` is a factor whose first
#' level is the control).
#'
#' @param scenario A scenario name (see [scenarios()]), a path to a scenario TOML
#'   file, or a named list of simulator parameters (then `kind` says which simulator
#'   draws them).
#' @param params A named list of parameters that override the scenario's (for example
#'   `list(n_genes = 200, n_perturbations = 10)`).
#' @param seed A non-negative integer seed; the same seed gives the same counts.
#' @param pseudobulk If `TRUE`, sum the cells of each perturbation and replicate into
#'   pseudobulk samples (a dense integer count matrix).
#' @param kind Simulator used when `scenario` is a list: `"screen"`, `"noise_only"` or
#'   `"var_network"`.
#' @return A `SummarizedExperiment`: assay `counts` (genes x cells or samples),
#'   `colData` (perturbation, is_control, target, guide, replicate, size_factor,
#'   knockdown, escaped, ...), `rowData` (base_mean, dispersion, is_regulator and the
#'   true per-gene `shared_log2fc` and `is_target`), and `metadata` with `truth` (the
#'   true `log2fc` perturbation x gene matrix, `specific_log2fc`, `targets`, ...),
#'   `params`, `seed`, `control`, `kind` and `version`.
#' @examples
#' \dontrun{
#' se <- simulate_screen("sparse_strong", params = list(n_genes = 200), seed = 1)
#' S4Vectors::metadata(se)$truth$log2fc[1:3, 1:5]
#' }
#' @export
simulate_screen <- function(scenario = "sparse_strong", params = list(), seed = 0L,
                            pseudobulk = FALSE, kind = "screen") {
  if (is.numeric(seed) && length(seed) == 1L && !is.na(seed) && seed >= 0 && seed == round(seed)) {
    seed <- as.integer(seed)
  } else {
    stop("parameter 'seed' must be a non-negative integer; got ", format(seed), call. = FALSE)
  }
  check_scalar(pseudobulk, "pseudobulk", "logical")
  tmp <- tempfile("simpert-sim-")
  on.exit(unlink(tmp, recursive = TRUE), add = TRUE)
  dir.create(tmp)
  if (is.list(scenario)) {
    params <- utils::modifyList(scenario, params)
    check_scalar(kind, "kind", "character")
    scenario <- file.path(tmp, "scenario.json")
    writeLines(jsonlite::toJSON(list(scenario = list(name = "custom", kind = kind),
                                     params = structure(list(), names = character())),
                                auto_unbox = TRUE), scenario)
  }
  check_scalar(scenario, "scenario", "character")
  out <- file.path(tmp, "screen")
  run_cli(c("simulate", scenario, "-o", out, "--format", "mtx", "--seed", seed,
            if (pseudobulk) "--pseudobulk", set_args(params)))
  read_screen_dir(out)
}
