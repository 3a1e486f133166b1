#' Evaluate a model's predictions against an observed screen
#'
#' Runs `simpert evaluate`: scores predicted cells or profiles against the observed
#' cells with the named metrics (or a named profile of metrics), with bootstrap
#' intervals over perturbations and, when `anchors = TRUE`, the two anchors of a fair
#' comparison: the mean-response baseline and the split-half replicate of the observed
#' data, and the score `(value - baseline) / (replicate - baseline)`.
#'
#' @param pred The predictions: a `SummarizedExperiment` or `SingleCellExperiment`
#'   (cells or one column per perturbation; counts or log-normalised values in its
#'   first assay), or a numeric matrix genes x perturbations of profiles whose column
#'   names are the perturbations. Its values must be of the same kind as `real`'s
#'   (counts, or log-normalised values).
#' @param real The observed screen: a `SingleCellExperiment` (or
#'   `SummarizedExperiment`) of cells with integer counts.
#' @param metrics Registered metric names (see [metrics()]); `NULL` when `profile` is
#'   given.
#' @param profile `NULL`, or a named set of metrics with its source's conventions:
#'   `"cell-eval-full"`, `"vcc"`, `"vcc2026"`, `"pereggrn"`, `"systema"` or `"all"`.
#' @param group,control The `colData` column holding the perturbations (in both
#'   objects) and the control level (see [run_de()]).
#' @param target `NULL` (a gene named like the perturbation is its target) or the
#'   `colData` column of `real` holding each perturbation's target gene.
#' @param train `NULL`, or observed cells of the training perturbations (for metrics
#'   that need them).
#' @param n_boot Bootstrap resamples for the intervals (0: none).
#' @param anchors Compute the anchors and the score.
#' @param seed A non-negative whole number (anchors and bootstrap).
#' @param input_type `NULL` (detected), `"counts"` or `"lognorm"`.
#' @return A list: `results` (a `data.frame`: `perturbation`, `metric`, `value`),
#'   `summary` (one row per metric: `value`, `ci_low`, `ci_high`, `n`, `baseline`,
#'   `replicate`, `score`, ...), `settings` (a list), `dropped` (genes and
#'   perturbations found on one side only) and `errors` (metrics that failed).
#' @examplesIf simpert_available()
#' real <- simulate_screen(params = list(n_genes = 40L, n_perturbations = 4L), seed = 1)
#' pred <- simulate_screen(params = list(n_genes = 40L, n_perturbations = 4L), seed = 1)
#' ev <- evaluate_predictions(pred, real, metrics = c("pearson_delta", "mse"), n_boot = 50L)
#' ev$summary[, c("metric", "value", "ci_low", "ci_high", "score")]
#' @export
evaluate_predictions <- function(pred, real, metrics = c("pearson_delta", "mse"), profile = NULL,
                                 group = NULL, control = NULL, target = NULL, train = NULL,
                                 n_boot = 1000L, anchors = TRUE, seed = 0L, input_type = NULL) {
  if (is.matrix(pred)) {
    if (!is.numeric(pred) || is.null(colnames(pred)) || is.null(rownames(pred))) {
      stop("parameter 'pred' as a matrix must be numeric genes x perturbations with row and column names",
           call. = FALSE)
    }
    pred <- SummarizedExperiment::SummarizedExperiment(
      assays = list(counts = pred),
      colData = S4Vectors::DataFrame(perturbation = factor(colnames(pred), levels = unique(colnames(pred))),
                                     row.names = make.unique(colnames(pred))))
    pred_group <- "perturbation"
  } else {
    pred_group <- group
  }
  if (!methods::is(pred, "SummarizedExperiment")) {
    stop("parameter 'pred' must be a SummarizedExperiment, SingleCellExperiment or numeric matrix; got ",
         class(pred)[[1L]], call. = FALSE)
  }
  if (!methods::is(real, "SummarizedExperiment")) {
    stop("parameter 'real' must be a SingleCellExperiment or SummarizedExperiment; got ",
         class(real)[[1L]], call. = FALSE)
  }
  if (is.null(profile)) {
    check_strings(metrics, "metrics")
  } else {
    check_scalar(profile, "profile", "character")
    metrics <- NULL
  }
  n_boot <- check_count(n_boot, "n_boot", min = 0L)
  check_scalar(anchors, "anchors", "logical")
  seed <- check_seed(seed)
  if (!is.null(input_type)) input_type <- match.arg(input_type, c("counts", "lognorm"))
  design <- screen_design(real, group = group, control = control)
  if (!is.null(target)) {
    check_scalar(target, "target", "character")
    if (!target %in% names(SummarizedExperiment::colData(real))) {
      stop(sprintf("parameter 'target' must name a colData column of 'real'; got %s", sQuote(target)),
           call. = FALSE)
    }
  }
  tmp <- scratch_dir("simpert-eval-")
  paths <- list()
  put <- function(x, name, strict, integer, grp) {
    dir <- file.path(tmp, name)
    write_screen(x, dir, control = design$control, group = grp, strict = strict, integer = integer)
    h5 <- file.path(tmp, paste0(name, ".h5ad"))
    run_cli(c("convert", dir, h5))
    h5
  }
  real_h5 <- put(real, "real", TRUE, TRUE, group)
  pred_h5 <- put(pred, "pred", FALSE, FALSE, pred_group)
  train_h5 <- if (!is.null(train)) put(train, "train", TRUE, TRUE, group)
  out <- file.path(tmp, "out")
  run_cli(c("evaluate", "--pred", pred_h5, "--real", real_h5, "-o", out,
            if (!is.null(profile)) c("--profile", profile),
            if (!is.null(metrics)) as.vector(rbind("--metric", metrics)),
            "--control", design$control,
            if (!is.null(target)) c("--target-key", target),
            if (!is.null(train_h5)) c("--train", train_h5),
            "--n-boot", n_boot, if (anchors) "--anchors" else "--no-anchors", "--seed", seed,
            if (!is.null(input_type)) c("--input-type", input_type)))
  read <- function(f) utils::read.csv(file.path(out, f), stringsAsFactors = FALSE, check.names = FALSE)
  doc <- jsonlite::fromJSON(file.path(out, "settings.json"), simplifyVector = TRUE)
  results <- read("results.csv")
  if (!is.null(metrics)) results$metric <- factor(results$metric, levels = union(metrics, unique(results$metric)))
  errors <- doc$errors
  if (length(errors) && NROW(errors)) {
    warning(sprintf("metric(s) %s failed and are left out", paste(unique(errors$metric), collapse = ", ")),
            call. = FALSE)
  }
  list(results = results, summary = read("intervals.csv"), settings = doc$settings,
       dropped = doc$dropped, errors = errors)
}
