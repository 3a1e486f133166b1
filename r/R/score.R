#' Score predictors of known quality with the field's metrics
#'
#' Runs `simpert score`: splits the perturbations of a screen into training and test
#' sets, builds the named predictors and scores them.
#'
#' @param x A scenario name or TOML path (a screen is simulated), or a
#'   `SummarizedExperiment` from [simulate_screen()] (its truth is used by the oracle).
#' @param predictors Predictor names, e.g. `"oracle"`, `"technical_duplicate"`,
#'   `"mean"`, `"control"`, `"ladder(0.5)"`.
#' @param metrics Registered metric names, e.g. `"pearson_delta"`, `"mse"`, `"pds_l1"`.
#' @param seed A non-negative integer seed (simulation, split and predictors).
#' @param params Parameters overriding the scenario's (when `x` is a scenario).
#' @param test_fraction Fraction of perturbations held out; default the scenario's.
#' @return A `data.frame` with columns `predictor`, `perturbation`, `metric`, `value`.
#' @examples
#' \dontrun{
#' score_metrics("sparse_strong", metrics = c("pearson_delta", "mse"))
#' }
#' @export
score_metrics <- function(x = "sparse_strong",
                          predictors = c("oracle", "technical_duplicate", "mean", "control"),
                          metrics = c("pearson_delta", "mse"), seed = 0L, params = list(),
                          test_fraction = NULL) {
  tmp <- tempfile("simpert-score-")
  on.exit(unlink(tmp, recursive = TRUE), add = TRUE)
  dir.create(tmp)
  if (methods::is(x, "SummarizedExperiment")) {
    input <- file.path(tmp, "screen")
    write_screen_dir(x, input)
    source <- c("--input", input)
  } else {
    check_scalar(x, "x", "character")
    source <- c("--scenario", x, set_args(params))
  }
  if (!is.character(predictors) || length(predictors) == 0L) {
    stop("parameter 'predictors' must be a non-empty character vector", call. = FALSE)
  }
  if (!is.character(metrics) || length(metrics) == 0L) {
    stop("parameter 'metrics' must be a non-empty character vector", call. = FALSE)
  }
  out <- file.path(tmp, "scores.csv")
  args <- c("score", source, as.vector(rbind("--predictor", predictors)),
            as.vector(rbind("--metric", metrics)), "--seed", as.integer(seed), "-o", out,
            if (!is.null(test_fraction)) c("--test-fraction", format(test_fraction)))
  run_cli(args)
  utils::read.csv(out, stringsAsFactors = FALSE, check.names = FALSE)
}
