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
#' @examples
#' \dontrun{
#' simpert_cli()
#' }
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

# Run `simpert <args>`; return its standard output lines; stop with its error message.
run_cli <- function(args, quiet = TRUE) {
  cmd <- simpert_cli()
  out <- tempfile("simpert-out-")
  err <- tempfile("simpert-err-")
  on.exit(unlink(c(out, err)), add = TRUE)
  full <- c(cmd[-1L], if (quiet) "--quiet", args)
  status <- suppressWarnings(system2(cmd[[1L]], shQuote(full), stdout = out, stderr = err))
  stdout <- if (file.exists(out)) readLines(out, warn = FALSE) else character()
  stderr <- if (file.exists(err)) readLines(err, warn = FALSE) else character()
  if (!identical(as.integer(status), 0L)) {
    msg <- grep("^(error|internal error)", stderr, value = TRUE)
    if (length(msg) == 0L) msg <- utils::tail(stderr, 5L)
    stop(sprintf("simpert %s failed (exit status %s): %s", args[[1L]], status,
                 paste(msg, collapse = "\n")), call. = FALSE)
  }
  if (!quiet && length(stderr)) message(paste(stderr, collapse = "\n"))
  stdout
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
