#' Score predictors of known quality with the field's metrics
#'
#' Runs `simpert score`: splits the perturbations of a screen into training and test
#' sets, builds the named predictors and scores them with the named metrics.
#'
#' @param x A scenario name or file (a screen is simulated), or a screen: a
#'   `SummarizedExperiment`, `SingleCellExperiment` or `DESeqDataSet` (a simulated one
#'   carries the truth the oracle needs; any other works with predictors that need no
#'   truth, such as `"mean"` and `"control"`).
#' @param predictors Predictor names, e.g. `"oracle"`, `"technical_duplicate"`,
#'   `"mean"`, `"median"`, `"control"`, `"ladder(0.5)"`.
#' @param metrics Registered metric names (see [metrics()]), e.g. `"pearson_delta"`,
#'   `"mse"`, `"pds_cosine"`.
#' @param seed A non-negative whole number (simulation, split and predictors).
#' @param params Parameters overriding the scenario's (when `x` is a scenario).
#' @param test_fraction Fraction of perturbations held out, in (0, 1); default the
#'   scenario's (0.5 for a screen given as an object).
#' @param group,control For a screen object: the `colData` column holding the
#'   perturbations and its control level (see [run_de()]).
#' @return A `data.frame`: `predictor` (a factor in the order asked for, ladder levels in
#'   increasing order of the mixing weight), `perturbation`, `metric` (a factor in the
#'   order asked for) and `value`.
#' @examplesIf simpert_available()
#' s <- score_metrics("sparse_strong", predictors = c("oracle", "mean", "ladder(0.5)"),
#'                    metrics = c("pearson_delta", "mse"),
#'                    params = list(n_genes = 60L, n_perturbations = 4L))
#' aggregate(value ~ predictor + metric, data = s, FUN = mean)
#' @export
score_metrics <- function(x = "sparse_strong",
                          predictors = c("oracle", "technical_duplicate", "mean", "control"),
                          metrics = c("pearson_delta", "mse"), seed = 0L, params = list(),
                          test_fraction = NULL, group = NULL, control = NULL) {
  seed <- check_seed(seed)
  check_strings(predictors, "predictors")
  check_strings(metrics, "metrics")
  check_params(params)
  if (!is.null(test_fraction)) {
    if (!is.numeric(test_fraction) || length(test_fraction) != 1L || is.na(test_fraction) ||
        test_fraction <= 0 || test_fraction >= 1) {
      stop("parameter 'test_fraction' must be a number in (0, 1); got ",
           paste(utils::capture.output(utils::str(test_fraction)), collapse = " "), call. = FALSE)
    }
  }
  tmp <- scratch_dir("simpert-score-")
  if (methods::is(x, "SummarizedExperiment")) {
    if (length(params)) {
      stop("parameter 'params' applies to a scenario; 'x' is a screen object", call. = FALSE)
    }
    design <- screen_design(x, group = group, control = control)
    others <- setdiff(levels(design$perturbation), design$control)
    if (length(others) < 2L) {
      stop(sprintf(paste0("parameter 'x' must hold at least two perturbations besides the control ",
                          "(they are split into training and test sets); colData(x)$%s has %d: %s"),
                   design$group, length(others), paste(others, collapse = ", ")), call. = FALSE)
    }
    input <- file.path(tmp, "screen")
    write_screen_dir(x, input, group = group, control = control)
    source <- c("--input", input)
  } else {
    if (!is.character(x) || length(x) != 1L || is.na(x)) {
      stop("parameter 'x' must be a scenario name or file, or a SummarizedExperiment; got ",
           class(x)[[1L]], call. = FALSE)
    }
    source <- c("--scenario", x, set_args(params))
  }
  out <- file.path(tmp, "scores.csv")
  args <- c("score", source, as.vector(rbind("--predictor", predictors)),
            as.vector(rbind("--metric", metrics)), "--seed", seed, "-o", out,
            if (!is.null(test_fraction)) c("--test-fraction", format(test_fraction, digits = 17)))
  run_cli(args)
  tab <- utils::read.csv(out, stringsAsFactors = FALSE, check.names = FALSE)
  tab$predictor <- factor(tab$predictor, levels = predictor_levels(predictors, tab$predictor))
  tab$metric <- factor(tab$metric, levels = union(metrics, unique(tab$metric)))
  tab
}

# Predictor levels: in the order given, ladder(alpha) levels sorted by alpha.
predictor_levels <- function(asked, seen = character()) {
  lv <- unique(c(as.character(asked), as.character(seen)))
  is_ladder <- grepl("^ladder\\(", lv)
  if (!any(is_ladder)) return(lv)
  alpha <- suppressWarnings(as.numeric(sub("^ladder\\(([^)]*)\\)$", "\\1", lv[is_ladder])))
  ladders <- lv[is_ladder][order(alpha, lv[is_ladder])]
  first <- which(is_ladder)[[1L]]
  rest <- lv[!is_ladder]
  append(rest, ladders, after = sum(!is_ladder[seq_len(first)]))
}
