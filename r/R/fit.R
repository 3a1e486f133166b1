#' Fit simulation parameters to your own screen
#'
#' Runs `simpert fit`: estimates from a screen of cell-level counts the parameters of
#' the screen simulator (gene means, dispersion trend, library sizes, cells per
#' perturbation, shared shift, effect sparsity), so that [simulate_screen()] and
#' [calibrate_metric()] can simulate screens shaped like yours.
#'
#' @param x A `SingleCellExperiment` or `SummarizedExperiment` of cells with integer
#'   counts (at least 3 control cells).
#' @param group,control The `colData` column holding each cell's perturbation and its
#'   control level (see [run_de()]).
#' @param min_mean Genes with a fitted base mean below this are left out of the
#'   shared-shift and effect-sparsity estimators.
#' @param file `NULL`, or a `.json` path that receives the fitted scenario (a file
#'   [simulate_screen()] and [calibrate_metric()] accept as `scenario`).
#' @return A list: `params` (a named list of simulator parameters; pass it to
#'   [simulate_screen()] as `scenario`), `summary` (a `data.frame` of the fitted
#'   quantities: `quantity`, `estimate`, `note`), `genes` (a `data.frame` per gene:
#'   `base_mean`, `dispersion`, `shared_log2fc`) and `file` (the scenario file or
#'   `NULL`).
#' @examplesIf simpert_available()
#' sce <- simulate_screen(params = list(n_genes = 60L, n_perturbations = 4L,
#'                                      n_control_cells = 80L), seed = 3)
#' fit <- estimate_params(sce)
#' fit$summary
#' again <- simulate_screen(fit$params, seed = 4)
#' dim(again)
#' @export
estimate_params <- function(x, group = NULL, control = NULL, min_mean = 0.5, file = NULL) {
  if (!methods::is(x, "SummarizedExperiment")) {
    stop("parameter 'x' must be a SingleCellExperiment or SummarizedExperiment of cells; got ",
         class(x)[[1L]], call. = FALSE)
  }
  if (!is.numeric(min_mean) || length(min_mean) != 1L || !is.finite(min_mean) || min_mean <= 0) {
    stop("parameter 'min_mean' must be a positive number; got ",
         paste(utils::capture.output(utils::str(min_mean)), collapse = " "), call. = FALSE)
  }
  if (!is.null(file)) {
    check_scalar(file, "file", "character")
    if (!grepl("\\.json$", file, ignore.case = TRUE)) {
      stop(sprintf("parameter 'file' must end in .json; got %s", sQuote(file)), call. = FALSE)
    }
  }
  tmp <- scratch_dir("simpert-fit-")
  input <- file.path(tmp, "screen")
  write_screen_dir(x, input, group = group, control = control)
  design <- screen_design(x, group = group, control = control)
  out <- if (is.null(file)) file.path(tmp, "fitted.json") else normalizePath(file, mustWork = FALSE)
  report <- file.path(tmp, "report.json")
  run_cli(c("fit", input, "-o", out, "--report", report, "--control", design$control,
            "--min-mean", format(min_mean, digits = 17)))
  sc <- jsonlite::fromJSON(out, simplifyVector = TRUE)
  rep <- jsonlite::fromJSON(report, simplifyVector = TRUE)
  params <- sc$params[!vapply(sc$params, is.null, logical(1))]
  list(
    params = params,
    summary = as.data.frame(rep$summary, stringsAsFactors = FALSE),
    genes = data.frame(base_mean = as.numeric(rep$gene_means),
                       dispersion = as.numeric(rep$gene_dispersion),
                       shared_log2fc = as.numeric(rep$shared_log2fc),
                       row.names = rep$genes),
    file = file
  )
}
