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

test_that("repeated small calls are fast with the worker", {
  need_cli()
  old <- options(simpert.worker = TRUE)
  on.exit(options(old), add = TRUE)
  p <- list(n_genes = 50L, n_perturbations = 4L, n_control_cells = 20L, cells_per_perturbation = 10)
  simulate_screen(params = p, seed = 0)
  t <- system.time(for (i in 1:10) simulate_screen(params = p, seed = i))[["elapsed"]]
  message(sprintf("10 simulate_screen() calls with the worker: %.2f s", t))
  expect_lt(t, 15)
})
