test_that("one worker serves the session; results equal the one-shot command line", {
  need_cli()
  old <- options(simpert.worker = TRUE)
  on.exit(options(old), add = TRUE)
  p <- list(n_genes = 30L, n_perturbations = 3L, n_control_cells = 20L, cells_per_perturbation = 8)
  a <- simulate_screen(params = p, seed = 11, pseudobulk = TRUE)
  st <- simpert_worker()
  expect_true(st$running)
  expect_true(is.integer(st$pid) && !is.na(st$pid))
  b <- simulate_screen(params = p, seed = 11, pseudobulk = TRUE)
  expect_identical(simpert_worker()$pid, st$pid)
  options(simpert.worker = FALSE)
  c <- simulate_screen(params = p, seed = 11, pseudobulk = TRUE)
  expect_identical(SummarizedExperiment::assay(a), SummarizedExperiment::assay(b))
  expect_identical(SummarizedExperiment::assay(a), SummarizedExperiment::assay(c))
  expect_false(simpert_worker()$enabled)
})

test_that("a failing request does not stop the worker; a dead worker falls back, then restarts", {
  need_cli()
  old <- options(simpert.worker = TRUE)
  on.exit(options(old), add = TRUE)
  simpert_worker("start")
  pid <- simpert_worker()$pid
  expect_error(simulate_screen("no_such_scenario"), "unknown scenario")
  expect_identical(simpert_worker()$pid, pid)
  tools::pskill(pid)
  Sys.sleep(0.5)
  # the call that finds the worker dead runs the command once instead
  se <- simulate_screen(params = list(n_genes = 20L, n_perturbations = 2L), seed = 1,
                        n_replicates = NULL)
  expect_s4_class(se, "SingleCellExperiment")
  expect_false(simpert_worker()$running)
  # the next one starts a new worker
  sc <- scenarios()
  st <- simpert_worker()
  expect_true(st$running)
  expect_false(identical(st$pid, pid))
  simpert_worker("stop")
  expect_false(simpert_worker()$running)
})

test_that("10 small calls: the worker against one-shot calls", {
  need_cli()
  old <- options(simpert.worker = FALSE)
  on.exit(options(old), add = TRUE)
  p <- list(n_genes = 50L, n_perturbations = 4L, n_control_cells = 20L, cells_per_perturbation = 10)
  once <- system.time(for (i in 1:10) simulate_screen(params = p, seed = i, n_replicates = NULL))[["elapsed"]]
  options(simpert.worker = TRUE)
  simulate_screen(params = p, seed = 0, n_replicates = NULL)
  worker <- system.time(for (i in 1:10) simulate_screen(params = p, seed = i, n_replicates = NULL))[["elapsed"]]
  message(sprintf("10 simulate_screen() calls: %.2f s one-shot, %.2f s with the worker", once, worker))
  expect_lt(worker, once / 2)
})

test_that("the worker closes with the R session", {
  need_cli()
  skip_if_not(dir.exists("/proc/self"), "needs /proc to see processes")
  rscript <- file.path(R.home("bin"), "Rscript")
  out <- system2(rscript, c("-e", shQuote(paste0(
    "suppressMessages(library(simpert)); options(simpert.cli = ", deparse(simpert_cli()), "); ",
    "invisible(simpert_worker('start')); cat(simpert_worker()$pid)"))), stdout = TRUE)
  pid <- as.integer(utils::tail(out, 1L))
  expect_false(is.na(pid))
  gone <- FALSE
  for (i in 1:100) {
    if (!dir.exists(file.path("/proc", pid)) ||
        any(grepl("^State:\\s+Z", tryCatch(readLines(file.path("/proc", pid, "status")), error = function(e) "State: Z")))) {
      gone <- TRUE
      break
    }
    Sys.sleep(0.1)
  }
  expect_true(gone)
})
