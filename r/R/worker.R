# The persistent worker: one `simpert serve` process per R session, reached over a
# loopback socket, so that repeated calls cost the work and not Python's start-up.

.worker <- new.env(parent = emptyenv())

worker_reset <- function() {
  .worker$cmd <- NULL
  .worker$port <- NULL
  .worker$pid <- NULL
  .worker$token <- NULL
  .worker$version <- NULL
  .worker$started <- NULL
  invisible(NULL)
}

worker_enabled <- function() {
  opt <- getOption("simpert.worker", TRUE)
  isTRUE(opt) && !identical(Sys.getenv("SIMPERT_WORKER"), "0")
}

worker_alive <- function() {
  !is.null(.worker$port)
}

# Start `simpert serve --port 0`, watching this session's process; TRUE when it answers.
worker_start <- function() {
  worker_reset()
  cmd <- tryCatch(simpert_cli(), error = function(e) NULL)
  if (is.null(cmd)) return(FALSE)
  port_file <- tempfile("simpert-worker-", fileext = ".port")
  log_file <- tempfile("simpert-worker-", fileext = ".log")
  args <- c(cmd[-1L], "serve", "--port", "0", "--port-file", port_file,
            "--parent-pid", Sys.getpid())
  ok <- tryCatch({
    system2(cmd[[1L]], shQuote(args), stdout = log_file, stderr = log_file, wait = FALSE)
    TRUE
  }, error = function(e) FALSE)
  if (!ok) return(FALSE)
  deadline <- Sys.time() + getOption("simpert.worker_start_timeout", 60)
  while (!file.exists(port_file) && Sys.time() < deadline) Sys.sleep(0.05)
  if (!file.exists(port_file)) return(FALSE)
  info <- strsplit(readLines(port_file, warn = FALSE)[[1L]], " ", fixed = TRUE)[[1L]]
  unlink(port_file)
  .worker$cmd <- cmd
  .worker$port <- as.integer(info[[1L]])
  .worker$token <- info[[2L]]
  .worker$log <- log_file
  reply <- worker_request(list(op = "ping"))
  if (is.null(reply)) return(FALSE)
  .worker$pid <- reply$pid
  .worker$version <- reply$version
  .worker$started <- Sys.time()
  TRUE
}

# Send one request over a fresh connection (closed before returning, so the session
# holds no connection between calls); return the reply, or NULL when the worker is gone.
worker_request <- function(req) {
  if (!worker_alive()) return(NULL)
  .worker$id <- (if (is.null(.worker$id)) 0L else .worker$id) + 1L
  req$id <- .worker$id
  req$token <- .worker$token
  line <- jsonlite::toJSON(req, auto_unbox = TRUE, null = "null")
  con <- tryCatch(
    suppressWarnings(socketConnection("127.0.0.1", port = .worker$port, blocking = TRUE,
                                      open = "r+b", timeout = 60 * 60 * 24 * 30)),
    error = function(e) NULL)
  if (is.null(con)) {
    worker_reset()
    return(NULL)
  }
  on.exit(close(con), add = TRUE)
  reply <- tryCatch({
    writeLines(line, con, useBytes = TRUE)
    flush(con)
    readLines(con, n = 1L, warn = FALSE, encoding = "UTF-8")
  }, error = function(e) character())
  if (length(reply) != 1L) {
    worker_reset()
    return(NULL)
  }
  out <- tryCatch(jsonlite::fromJSON(reply, simplifyVector = TRUE), error = function(e) NULL)
  if (is.null(out) || !identical(as.integer(out$id), req$id)) {
    worker_reset()
    return(NULL)
  }
  out
}

worker_stop <- function() {
  if (worker_alive()) {
    try(worker_request(list(op = "shutdown")), silent = TRUE)
  }
  worker_reset()
}

# Run `simpert <argv>` in the worker (starting it when needed); NULL if that is not possible.
worker_run <- function(argv) {
  if (!worker_enabled()) return(NULL)
  cmd <- tryCatch(simpert_cli(), error = function(e) NULL)
  if (worker_alive() && !identical(.worker$cmd, cmd)) worker_stop()
  if (!worker_alive() && !isTRUE(worker_start())) return(NULL)
  env <- as.list(Sys.getenv()[startsWith(names(Sys.getenv()), "SIMPERT_")])
  env <- env[setdiff(names(env), c("SIMPERT_CLI", "SIMPERT_WORKER"))]
  req <- list(argv = I(as.character(argv)), cwd = normalizePath(getwd()))
  if (length(env)) req$env <- env
  reply <- worker_request(req)
  if (is.null(reply)) return(NULL)
  list(status = as.integer(reply$exit_code),
       stdout = split_lines(reply$stdout), stderr = split_lines(reply$stderr))
}

split_lines <- function(x) {
  if (is.null(x) || !nzchar(x)) return(character())
  strsplit(sub("\n$", "", x), "\n", fixed = TRUE)[[1L]]
}

#' The persistent simpert worker
#'
#' Calls into Python go to one `simpert serve` process kept alive for the R session
#' (started on first use and closed when the session ends), so that repeated calls pay
#' the work and not Python's start-up of about 3 s. Each call connects to it over a
#' loopback socket and closes the connection when answered. If the worker cannot start
#' or dies, the call falls back to running the `simpert` command once; the next call
#' starts a new worker.
#' `options(simpert.worker = FALSE)` (or the environment variable `SIMPERT_WORKER=0`)
#' turns the worker off.
#'
#' @param action `"status"` (report only), `"start"` (start it now if not running) or
#'   `"stop"` (close it; the next call starts a new one when enabled).
#' @return A list, invisibly for `"stop"`: `running` (logical), `pid` (process id of
#'   the worker or `NA`), `version` (of the Python package or `NA`), `enabled`
#'   (whether calls use the worker).
#' @examplesIf simpert_available()
#' simpert_worker("start")$running
#' simpert_worker("stop")
#' simpert_worker()
#' @export
simpert_worker <- function(action = c("status", "start", "stop")) {
  action <- match.arg(action)
  if (identical(action, "start") && !worker_alive()) worker_start()
  if (identical(action, "stop")) worker_stop()
  out <- list(running = worker_alive(),
              pid = if (worker_alive() && !is.null(.worker$pid)) as.integer(.worker$pid) else NA_integer_,
              version = if (worker_alive() && !is.null(.worker$version)) .worker$version else NA_character_,
              enabled = worker_enabled())
  if (identical(action, "stop")) invisible(out) else out
}

.onLoad <- function(libname, pkgname) {
  reg.finalizer(.worker, function(e) worker_stop(), onexit = TRUE)
  invisible(NULL)
}

.onUnload <- function(libpath) {
  worker_stop()
}
