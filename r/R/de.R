#' Differential expression on a screen
#'
#' Writes the screen to a temporary MatrixMarket directory and runs `simpert de`:
#' every perturbation against the control, from one fit (cells are summed into
#' pseudobulk samples first).
#'
#' @param se A `SummarizedExperiment` as returned by [simulate_screen()] (or any with
#'   integer counts and a `perturbation` column in `colData`).
#' @param backend `"native"` (simpert's vectorised DESeq2 engine), `"pydeseq2"` or
#'   `"r"` (R DESeq2 through rpy2).
#' @param control The control label; default `metadata(se)$control` or `"control"`.
#' @param shrink `FALSE` (none), `TRUE` or `"normal"` (DESeq2's normal prior; native
#'   and r backends), `"ash"` (adaptive shrinkage) or `"apeglm"` (pydeseq2 backend):
#'   adds `log2fc_shrunk` and `lfc_se_shrunk`.
#' @return A `data.frame` with one row per perturbation and gene: `perturbation`,
#'   `gene`, `base_mean`, `log2fc`, `lfc_se`, `stat`, `pvalue`, `padj` (and the shrunken
#'   columns when asked for).
#' @examples
#' \dontrun{
#' se <- simulate_screen("sparse_strong", params = list(n_genes = 200), pseudobulk = TRUE)
#' head(run_de(se))
#' }
#' @export
run_de <- function(se, backend = c("native", "pydeseq2", "r"), control = NULL, shrink = FALSE) {
  backend <- match.arg(backend)
  if (isTRUE(shrink)) shrink <- "normal"
  if (isFALSE(shrink)) shrink <- NULL
  if (!is.null(shrink)) shrink <- match.arg(shrink, c("normal", "ash", "apeglm"))
  tmp <- tempfile("simpert-de-")
  on.exit(unlink(tmp, recursive = TRUE), add = TRUE)
  dir.create(tmp)
  input <- file.path(tmp, "screen")
  write_screen_dir(se, input, control = control)
  out <- file.path(tmp, "de.csv")
  run_cli(c("de", input, "-o", out, "--backend", backend, if (!is.null(shrink)) c("--shrink", shrink)))
  utils::read.csv(out, stringsAsFactors = FALSE, check.names = FALSE)
}
