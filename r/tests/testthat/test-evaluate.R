test_that("evaluate_predictions scores predictions against an observed screen", {
  need_cli()
  real <- simulate_screen(tiny_scenario(), seed = 1, n_replicates = NULL)
  same <- evaluate_predictions(real, real, metrics = c("pearson_delta", "mse"), n_boot = 20L)
  expect_true(all(c("perturbation", "metric", "value") %in% names(same$results)))
  expect_identical(levels(same$results$metric), c("pearson_delta", "mse"))
  mse <- same$summary[same$summary$metric == "mse", ]
  expect_lt(mse$value, 1e-12)
  expect_true(all(c("ci_low", "ci_high", "baseline", "replicate", "score") %in% names(same$summary)))
  # profiles as a genes x perturbations matrix (summed counts, the same kind as 'real')
  counts <- as.matrix(SummarizedExperiment::assay(real))
  prof <- sapply(split(seq_len(ncol(real)), as.character(real$perturbation)),
                 function(i) rowSums(counts[, i, drop = FALSE]))
  ev <- evaluate_predictions(prof, real, metrics = "pearson_delta", n_boot = 0L, anchors = FALSE)
  expect_gt(mean(ev$results$value), 0.5)
  expect_error(evaluate_predictions(matrix(1), real), "parameter 'pred'")
  expect_error(evaluate_predictions(real, 42), "parameter 'real'")
  expect_error(evaluate_predictions(real, real, n_boot = -1), "parameter 'n_boot'")
})
