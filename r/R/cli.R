#' Locate the simpert command line
#'
#' The command is looked up, in order, in the option `simpert.cli` (a path, or a
#' character vector whose first element is the program and whose other elements are
#' leading arguments, e.g. `c("/path/python", "-m", "simpert.cli")`), the environment
#' variable `SIMPERT_CLI` (a path), the `PATH`, and finally a `.venv/bin/simpert` in the
#' working directory or one of its parents (the layout of a source checkout, where the
#' package lives in `r/`).
#'
#' @return A character vector: the program followed by any leading arguments.
#' @examplesIf simpert_available()
#' simpert_cli()
#' @export
simpert_cli <- function() {
  opt <- getOption("simpert.cli", NULL)
  if (!is.null(opt) && length(opt) > 0L && nzchar(opt[[1L]])) {
    opt <- as.character(opt)
    if (!file.exists(opt[[1L]]) && !nzchar(Sys.which(opt[[1L]]))) {
      stop(sprintf("option 'simpert.cli' names %s, which does not exist", sQuote(opt[[1L]])),
           call. = FALSE)
    }
    return(opt)
  }
  env <- Sys.getenv("SIMPERT_CLI", "")
  if (nzchar(env)) {
    if (!file.exists(env)) {
      stop(sprintf("environment variable SIMPERT_CLI names %s, which does not exist", sQuote(env)),
           call. = FALSE)
    }
    return(env)
  }
  on_path <- Sys.which("simpert")
  if (nzchar(on_path)) {
    return(unname(on_path))
  }
  dir <- normalizePath(getwd(), mustWork = FALSE)
  for (i in seq_len(6L)) {
    candidate <- file.path(dir, ".venv", "bin", "simpert")
    if (file.exists(candidate)) {
      return(normalizePath(candidate))
    }
    parent <- dirname(dir)
    if (identical(parent, dir)) break
    dir <- parent
  }
  stop(paste0(
    "cannot find the simpert command line: install the Python package (pip install simpert) ",
    "so that 'simpert' is on the PATH, or set options(simpert.cli = \"/path/to/simpert\") ",
    "or the environment variable SIMPERT_CLI"
  ), call. = FALSE)
}

#' Whether the simpert command line can be found
#'
#' @return `TRUE` or `FALSE`.
#' @examples
#' simpert_available()
#' @export
simpert_available <- function() {
  !inherits(tryCatch(simpert_cli(), error = function(e) e), "error")
}

# Run `simpert <args>` (in the persistent worker when possible, else once); return its
# standard output lines; stop with its error message, phrased for R.
run_cli <- function(args, quiet = TRUE, call = NULL) {
  full <- c(if (quiet) "--quiet", args)
  res <- worker_run(full)
  if (is.null(res)) res <- run_once(full)
  if (!identical(res$status, 0L)) {
    stop(simpleError(cli_message(res$stderr, args[[1L]], res$status), call))
  }
  if (!quiet && length(res$stderr)) message(paste(res$stderr, collapse = "\n"))
  res$stdout
}

run_once <- function(full) {
  cmd <- simpert_cli()
  out <- tempfile("simpert-out-")
  err <- tempfile("simpert-err-")
  on.exit(unlink(c(out, err)), add = TRUE)
  status <- suppressWarnings(system2(cmd[[1L]], shQuote(c(cmd[-1L], full)), stdout = out, stderr = err))
  list(status = as.integer(status),
       stdout = if (file.exists(out)) readLines(out, warn = FALSE) else character(),
       stderr = if (file.exists(err)) readLines(err, warn = FALSE) else character())
}

# The command line's error, without its decoration and in the package's vocabulary.
cli_message <- function(stderr, command, status) {
  lines <- gsub("[\u2500-\u257f]", "", stderr)
  lines <- trimws(lines)
  lines <- lines[nzchar(lines)]
  msg <- grep("^(error|internal error)", lines, value = TRUE)
  if (length(msg) == 0L) {
    msg <- grep("^(Usage:|Try ')", lines, value = TRUE, invert = TRUE)
    if (length(msg) == 0L) msg <- sprintf("the simpert command line exited with status %s", status)
  }
  msg <- sub("^error: ", "", msg)
  msg <- sub("^internal error \\(([A-Za-z]+)\\): ", "", msg)
  msg <- gsub("\\(set SIMPERT_DEBUG=1 for the traceback\\)", "", msg)
  msg <- gsub("[A-Za-z]+Params\\.__init__\\(\\) got an unexpected keyword argument '([^']+)'",
              "unknown simulation parameter '\\1' (see scenario_params())", msg)
  msg <- gsub("parameter 'adata'", "the screen", msg, fixed = TRUE)
  msg <- gsub("an AnnData", "a screen", msg, fixed = TRUE)
  msg <- gsub("\\bAnnData\\b", "screen", msg)
  msg <- gsub("\\badata\\.obs\\b|\\bobs\\b", "colData", msg)
  msg <- gsub("\\badata\\.var\\b|\\bvar\\b(?= column)", "rowData", msg, perl = TRUE)
  msg <- gsub("\\badata\\b", "the screen", msg)
  msg <- gsub("option '--([a-z-]+)'", "the \\1 setting", msg)
  paste(trimws(msg[nzchar(trimws(msg))]), collapse = "\n")
}

# Parameter list -> repeated `--set key=<json>` arguments.
set_args <- function(params) {
  if (is.null(params) || length(params) == 0L) return(character())
  if (!is.list(params) || is.null(names(params)) || any(!nzchar(names(params)))) {
    stop("parameter 'params' must be a named list; got ", class(params)[[1L]], call. = FALSE)
  }
  unlist(lapply(names(params), function(k) {
    value <- params[[k]]
    json <- jsonlite::toJSON(value, auto_unbox = length(value) == 1L && !is.list(value),
                             digits = NA, null = "null")
    c("--set", paste0(k, "=", json))
  }), use.names = FALSE)
}

check_scalar <- function(x, name, type = c("character", "numeric", "logical")) {
  type <- match.arg(type)
  ok <- length(x) == 1L && !is.na(x) && switch(type,
    character = is.character(x),
    numeric = is.numeric(x),
    logical = is.logical(x)
  )
  if (!ok) {
    stop(sprintf("parameter '%s' must be a single %s value; got %s", name, type,
                 paste(utils::capture.output(utils::str(x)), collapse = " ")), call. = FALSE)
  }
  invisible(x)
}

check_count <- function(x, name, min = 1L, null_ok = FALSE) {
  if (null_ok && is.null(x)) return(invisible(NULL))
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) && x == round(x) && x >= min
  if (!ok) {
    stop(sprintf("parameter '%s' must be a whole number >= %d; got %s", name, as.integer(min),
                 paste(utils::capture.output(utils::str(x)), collapse = " ")), call. = FALSE)
  }
  invisible(as.integer(x))
}

check_strings <- function(x, name, null_ok = FALSE) {
  if (null_ok && is.null(x)) return(invisible(NULL))
  if (!is.character(x) || length(x) == 0L || anyNA(x) || any(!nzchar(x))) {
    stop(sprintf("parameter '%s' must be a non-empty character vector without NA or \"\"; got %s",
                 name, paste(utils::capture.output(utils::str(x)), collapse = " ")), call. = FALSE)
  }
  invisible(x)
}

check_seed <- function(seed) {
  if (is.numeric(seed) && length(seed) == 1L && !is.na(seed) && seed >= 0 && seed == round(seed) &&
      seed < 2^31) {
    return(as.integer(seed))
  }
  stop("parameter 'seed' must be a non-negative whole number; got ",
       paste(utils::capture.output(utils::str(seed)), collapse = " "), call. = FALSE)
}

# A fresh temporary directory removed when the calling function exits.
scratch_dir <- function(prefix, envir = parent.frame()) {
  tmp <- tempfile(prefix)
  dir.create(tmp)
  do.call(on.exit, list(substitute(unlink(tmp, recursive = TRUE), list(tmp = tmp)), add = TRUE),
          envir = envir)
  tmp
}
