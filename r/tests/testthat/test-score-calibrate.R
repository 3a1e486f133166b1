test_that("scoring a simulated SummarizedExperiment equals scoring the scenario", {
  need_cli()
  se <- simulate_screen(tiny_scenario(), seed = 2)
  preds <- c("oracle", "mean", "control")
  a <- score_metrics(tiny_scenario(), predictors = preds, metrics = c("pearson_delta", "mse"), seed = 2)
  b <- score_metrics(se, predictors = preds, metrics = c("pearson_delta", "mse"), seed = 2)
  expect_identical(names(a), c("predictor", "perturbation", "metric", "value"))
  expect_setequal(unique(a$predictor), preds)
  key <- function(d) paste(d$predictor, d$perturbation, d$metric)
  expect_setequal(key(a), key(b))
  expect_equal(b$value[match(key(a), key(b))], a$value, tolerance = 1e-9)
  # the truth has a smaller error than the control baseline on average
  pd <- a[a$metric == "mse", ]
  expect_lt(mean(pd$value[pd$predictor == "oracle"]), mean(pd$value[pd$predictor == "control"]))
})

test_that("an R metric calibrates and agrees with the built-in metric it re-implements", {
  need_cli()
  my_mae <- function(pred, real, pred_control, real_control) rowMeans(abs(pred - real))
  preds <- c("oracle", "technical_duplicate", "mean", "control")
  mine <- calibrate_metric(my_mae, "my_mae", higher_is_better = FALSE, best = 0,
                           scenarios = tiny_scenario(), n_replicates = 2L, seed = 4,
                           predictors = preds, card = FALSE)
  ref <- calibrate_metric("mae", scenarios = tiny_scenario(), n_replicates = 2L, seed = 4,
                          predictors = preds, card = FALSE)
  expect_identical(nrow(mine$errors), 0L)
  expect_true(all(mine$table$metric == "my_mae"))
  expect_true(all(ref$table$metric == "mae"))
  key <- function(d) paste(d$scenario, d$replicate, d$predictor, d$perturbation)
  expect_setequal(key(mine$table), key(ref$table))
  expect_equal(mine$table$value, ref$table$value[match(key(mine$table), key(ref$table))],
               tolerance = 1e-9)
  expect_true(all(c("metric", "scenario", "statistic", "mean", "se") %in% names(mine$summary)))
  expect_match(mine$verdict, "^my_mae: ")
})

test_that("an R metric that fails is reported, and the card is drawn", {
  need_cli()
  boom <- function(pred, real, pred_control, real_control) stop("boom")
  expect_error(calibrate_metric(boom, "boom", scenarios = tiny_scenario(), n_replicates = 1L,
                                predictors = c("oracle", "mean"), card = FALSE), "boom")
  expect_error(calibrate_metric(42), "parameter 'fun'")
  good <- function(pred, real, pred_control, real_control) -rowMeans((pred - real)^2)
  res <- calibrate_metric(good, "neg_mse", scenarios = tiny_scenario(), n_replicates = 1L,
                          params = list(n_genes = 40L))
  expect_true(file.exists(res$card))
  expect_identical(unique(res$table$scenario), "tiny")
})
