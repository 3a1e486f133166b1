#' Calibrate a metric written as an R function
#'
#' Does the metric reward what it should? On each scenario and replicate a screen is
#' simulated, predictors of known quality are built (oracle, technical duplicate, a
#' ladder between the mean baseline and the truth, the mean and control baselines,
#' systematic-only, target-only, shuffled) and scored with the function; the summary
#' says how well it separates good predictions from bad ones.
#'
#' The function is called as `fun(pred, real, pred_control, real_control)`: `pred` and
#' `real` are numeric matrices perturbations x genes (log-normalised profiles, with
#' dimnames), `pred_control` and `real_control` named numeric vectors over genes (the
#' control profiles). A function with fewer arguments gets those it names (or the first
#' ones, in that order), so `function(pred, real)` works. It must return one number per
#' row of `pred`. It runs in the simpert worker's R, so only its text travels: it must
#' not use variables defined outside it (this is checked before anything runs; packages
#' can be used with `pkg::fun`). When it fails, R's own error message is reported: as an
#' error when it fails everywhere, as a warning when it fails on some scenarios (which
#' are then listed in `$errors`); a function that returns only `NA`, or that warns,
#' gives a warning too.
#'
#' @param fun An R function `function(pred, real, pred_control, real_control)`, or the
#'   name of a registered metric (see [metrics()]; to compare with, e.g. `"mae"`).
#' @param name Name of the metric in the tables (default the registered name when `fun`
#'   is one).
#' @param higher_is_better `TRUE` when larger values mean better predictions.
#' @param best The value a perfect prediction attains (`NULL` if unknown; the dynamic
#'   range fraction then needs it and is `NA`).
#' @param scenarios Scenario names or files (see [scenarios()]).
#' @param n_replicates Simulated screens per scenario (a whole number >= 1).
#' @param seed A non-negative whole number: the same seed gives the same tables.
#' @param predictors Predictor names; `NULL` for the standard panel.
#' @param params Named list of simulator parameters overriding every scenario's (e.g.
#'   `list(n_genes = 200)` for a quick run).
#' @param executor `"serial"`, `"joblib"` or `"dask"`.
#' @param jobs Number of workers (`NULL`: every CPU).
#' @param card `FALSE` (no calibration card), `TRUE` (draw it into a PNG file in the
#'   session's temporary directory) or a file path ending in `.png`.
#' @param output_dir `NULL` (the default: the command line's output directory is removed
#'   once read) or a directory that keeps `table.csv`, `summary.csv`, `summary.json`,
#'   `errors.csv` and the card.
#' @return A list with `table` (a `data.frame`: `scenario`, `replicate` (a factor, `1`,
#'   `2`, ...), `predictor` (a factor), `perturbation`, `metric`, `value`), `summary`
#'   (`metric`, `scenario`, `statistic`, `mean`, `se`, `n`, `B`), `errors` (scenarios on
#'   which the function failed, with R's message), `verdict` (one line) and `card` (path
#'   of the PNG, or `NULL`).
#' @examplesIf simpert_available()
#' mae <- function(pred, real) rowMeans(abs(pred - real))
#' res <- calibrate_metric(mae, "my_mae", higher_is_better = FALSE, best = 0,
#'                         n_replicates = 1L, predictors = c("oracle", "mean", "control"),
#'                         params = list(n_genes = 40L, n_perturbations = 4L))
#' res$verdict
#' head(res$summary)
#' @export
calibrate_metric <- function(fun, name = "r_metric", higher_is_better = TRUE, best = NULL,
                             scenarios = "sparse_strong", n_replicates = 3L, seed = 0L,
                             predictors = NULL, params = list(), executor = "serial",
                             jobs = NULL, card = FALSE, output_dir = NULL) {
  registered <- is.character(fun) && length(fun) == 1L && !is.na(fun)
  if (!is.function(fun) && !registered) {
    stop("parameter 'fun' must be an R function or a registered metric name; got ",
         class(fun)[[1L]], call. = FALSE)
  }
  if (registered && missing(name)) name <- fun
  check_scalar(name, "name", "character")
  check_scalar(higher_is_better, "higher_is_better", "logical")
  if (!is.null(best) && (!is.numeric(best) || length(best) != 1L || !is.finite(best))) {
    stop("parameter 'best' must be NULL or a finite number; got ",
         paste(utils::capture.output(utils::str(best)), collapse = " "), call. = FALSE)
  }
  executor <- match.arg(executor, c("serial", "joblib", "dask"))
  check_strings(scenarios, "scenarios")
  n_replicates <- check_count(n_replicates, "n_replicates")
  seed <- check_seed(seed)
  check_strings(predictors, "predictors", null_ok = TRUE)
  check_params(params)
  jobs <- check_count(jobs, "jobs", null_ok = TRUE)
  card_path <- NULL
  if (is.character(card)) {
    check_scalar(card, "card", "character")
    if (!grepl("\\.png$", card, ignore.case = TRUE)) {
      stop(sprintf("parameter 'card' must be TRUE, FALSE or a file path ending in .png; got %s",
                   sQuote(card)), call. = FALSE)
    }
    card_path <- card
    card <- TRUE
  }
  check_scalar(card, "card", "logical")
  if (!is.null(output_dir)) check_scalar(output_dir, "output_dir", "character")
  tmp <- scratch_dir("simpert-cal-")
  log_file <- file.path(tmp, "metric.log")
  if (registered) {
    fn_id <- fun
    metric_arg <- fun
  } else {
    check_free_variables(fun)
    fn_id <- make.names(name)
    rfile <- file.path(tmp, "metric.R")
    writeLines(metric_source(fun, fn_id, log_file), rfile)
    metric_arg <- paste0(rfile, ":", fn_id)
  }
  out <- if (is.null(output_dir)) file.path(tmp, "out") else output_dir
  args <- c("calibrate", "--metric", metric_arg,
            as.vector(rbind("--scenario", scenarios)), "-o", out,
            "--replicates", n_replicates, "--seed", seed,
            "--executor", executor,
            if (!is.null(jobs)) c("--jobs", jobs),
            if (!higher_is_better) "--lower-is-better",
            if (!is.null(best)) c("--best", format(best, digits = 17)),
            if (!card) "--no-card",
            if (!is.null(predictors)) as.vector(rbind("--predictor", predictors)),
            set_args(params))
  res <- tryCatch(run_cli(args), error = function(e) e)
  notes <- read_metric_log(log_file)
  if (inherits(res, "error")) {
    r_errors <- unique(notes$message[notes$kind == "error"])
    if (length(r_errors)) {
      stop(sprintf("the metric %s failed on every scenario; R said: %s", sQuote(name),
                   paste(r_errors, collapse = " | ")), call. = FALSE)
    }
    stop(conditionMessage(res), call. = FALSE)
  }
  read <- function(f) utils::read.csv(file.path(out, f), stringsAsFactors = FALSE, check.names = FALSE)
  rename <- function(df) {
    if ("metric" %in% names(df) && nrow(df)) df$metric[df$metric == fn_id] <- name
    df
  }
  info <- jsonlite::fromJSON(file.path(out, "summary.json"), simplifyVector = TRUE)
  card_file <- list.files(out, pattern = "^card_.*\\.png$", full.names = TRUE)
  verdict <- unlist(info$verdicts)
  if (length(verdict)) verdict <- sub(paste0("^", fn_id, ":"), paste0(name, ":"), verdict)
  table <- rename(read("table.csv"))
  if ("replicate" %in% names(table) && is.numeric(table$replicate)) {
    table$replicate <- factor(table$replicate + 1L, levels = sort(unique(table$replicate + 1L)))
  }
  if ("predictor" %in% names(table)) {
    table$predictor <- factor(table$predictor,
                              levels = predictor_levels(if (is.null(predictors)) character() else predictors,
                                                        table$predictor))
  }
  errors <- rename(read("errors.csv"))
  r_errors <- unique(notes$message[notes$kind == "error"])
  if (nrow(errors)) {
    if (length(r_errors) && "message" %in% names(errors)) errors$message <- paste(r_errors, collapse = " | ")
    warning(sprintf("the metric %s failed on %d of %d scenario(s) (%s), which are left out; R said: %s",
                    sQuote(name), length(unique(errors$scenario)), length(scenarios),
                    paste(unique(errors$scenario), collapse = ", "),
                    if (length(r_errors)) paste(r_errors, collapse = " | ") else
                      paste(unique(errors$message), collapse = " | ")), call. = FALSE)
  }
  if (any(notes$kind == "all_na")) {
    warning(sprintf("the metric %s returned only NA on %d input(s); its statistics there are NA",
                    sQuote(name), sum(notes$kind == "all_na")), call. = FALSE)
  }
  r_warnings <- unique(notes$message[notes$kind == "warning"])
  if (length(r_warnings)) {
    warning(sprintf("the metric %s warned: %s", sQuote(name), paste(r_warnings, collapse = " | ")),
            call. = FALSE)
  }
  card_out <- NULL
  if (length(card_file)) {
    if (!is.null(card_path)) {
      file.copy(card_file[[1L]], card_path, overwrite = TRUE)
      card_out <- card_path
    } else if (is.null(output_dir)) {
      card_out <- tempfile("simpert-card-", fileext = ".png")
      file.copy(card_file[[1L]], card_out)
    } else {
      card_out <- card_file[[1L]]
    }
  }
  list(
    table = table,
    summary = rename(read("summary.csv")),
    errors = errors,
    verdict = unname(verdict),
    card = card_out
  )
}

# The R source the worker runs: the user's function inside a wrapper that passes the
# arguments it names, checks what it returns, and records R's messages in `log_file`.
metric_source <- function(fun, fn_id, log_file) {
  user <- paste(deparse(fun, width.cutoff = 500L), collapse = "\n")
  paste0("`", fn_id, "` <- local({\n",
         ".user <- ", user, "\n",
         ".log <- ", deparse(log_file), "\n",
         paste(deparse(metric_wrapper), collapse = "\n"), "\n",
         "})\n")
}

# The body of the wrapper (deparsed into the metric file; it refers to .user and .log).
metric_wrapper <- function(pred, real, pred_control, real_control) {
  note <- function(kind, msg) {
    cat(kind, "\t", gsub("[\t\n\r]+", " ", msg), "\n", file = .log, append = TRUE, sep = "")
  }
  all <- list(pred = pred, real = real, pred_control = pred_control, real_control = real_control)
  fa <- names(formals(.user))
  args <- if (is.null(fa) || "..." %in% fa) {
    all
  } else if (length(intersect(fa, names(all)))) {
    all[intersect(fa, names(all))]
  } else {
    unname(all[seq_len(min(length(fa), 4L))])
  }
  out <- withCallingHandlers(
    tryCatch(do.call(.user, args), error = function(e) {
      msg <- conditionMessage(e)
      note("error", msg)
      stop(msg, call. = FALSE)
    }),
    warning = function(w) {
      note("warning", conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  if (!(is.numeric(out) || is.logical(out)) || !is.null(dim(out)) && length(dim(out)) > 1L && ncol(out) > 1L) {
    msg <- sprintf("the metric must return a numeric vector, one number per row of pred; it returned %s",
                   paste(class(out), collapse = "/"))
    note("error", msg)
    stop(msg, call. = FALSE)
  }
  if (length(out) != nrow(pred)) {
    msg <- sprintf("the metric must return one number per row of pred (%d); it returned %d",
                   nrow(pred), length(out))
    note("error", msg)
    stop(msg, call. = FALSE)
  }
  out <- as.numeric(out)
  if (all(is.na(out))) note("all_na", "only NA")
  out
}

read_metric_log <- function(path) {
  if (!file.exists(path)) return(data.frame(kind = character(), message = character()))
  lines <- readLines(path, warn = FALSE)
  parts <- regmatches(lines, regexpr("\t", lines), invert = TRUE)
  data.frame(kind = vapply(parts, `[`, character(1), 1L),
             message = trimws(vapply(parts, function(p) if (length(p) > 1L) p[[2L]] else "", character(1))),
             stringsAsFactors = FALSE)
}

# Only the function's text travels: refuse one that uses variables defined outside it.
check_free_variables <- function(fun) {
  if (is.primitive(fun)) return(invisible(NULL))
  g <- codetools::findGlobals(fun, merge = FALSE)
  pkgs <- c("stats", "utils", "methods", "graphics", "grDevices", "datasets")
  known <- function(nm) {
    exists(nm, envir = baseenv(), inherits = FALSE) ||
      any(vapply(pkgs, function(p) nm %in% getNamespaceExports(p), logical(1)))
  }
  free <- Filter(Negate(known), unique(c(g$variables, g$functions)))
  if (length(free)) {
    stop(sprintf(paste0("parameter 'fun' uses %s, defined outside the function; only the function's ",
                        "text travels to the calibration, so define %s inside it (or use pkg::name ",
                        "for functions of a package)"),
                 paste(sQuote(free), collapse = ", "), if (length(free) > 1L) "them" else "it"),
         call. = FALSE)
  }
  invisible(NULL)
}
