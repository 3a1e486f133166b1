test_that("scoring a simulated screen object equals scoring the scenario", {
  need_cli()
  se <- simulate_screen(tiny_scenario(), seed = 2, n_replicates = NULL)
  preds <- c("oracle", "mean", "control")
  a <- score_metrics(tiny_scenario(), predictors = preds, metrics = c("pearson_delta", "mse"), seed = 2)
  b <- score_metrics(se, predictors = preds, metrics = c("pearson_delta", "mse"), seed = 2)
  expect_identical(names(a), c("predictor", "perturbation", "metric", "value"))
  expect_identical(levels(a$predictor), preds)
  expect_identical(levels(a$metric), c("pearson_delta", "mse"))
  key <- function(d) paste(d$predictor, d$perturbation, d$metric)
  expect_setequal(key(a), key(b))
  expect_equal(b$value[match(key(a), key(b))], a$value, tolerance = 1e-9)
  pd <- a[a$metric == "mse", ]
  expect_lt(mean(pd$value[pd$predictor == "oracle"]), mean(pd$value[pd$predictor == "control"]))
})

test_that("ladder levels come in numeric order", {
  need_cli()
  s <- score_metrics(tiny_scenario(), predictors = c("oracle", "ladder(1)", "ladder(0.25)", "ladder(0.5)", "mean"),
                     metrics = "mse", seed = 1)
  expect_identical(levels(s$predictor), c("oracle", "ladder(0.25)", "ladder(0.5)", "ladder(1)", "mean"))
  expect_identical(simpert:::predictor_levels(c("ladder(10)", "ladder(2)")), c("ladder(2)", "ladder(10)"))
})

test_that("score_metrics checks its arguments in R", {
  need_cli()
  expect_error(score_metrics(tiny_scenario(), metrics = "not_a_metric"), "unknown metric")
  expect_error(score_metrics(tiny_scenario(), metrics = character()), "parameter 'metrics'")
  expect_error(score_metrics(tiny_scenario(), test_fraction = 1), "parameter 'test_fraction'")
  expect_error(score_metrics(42), "parameter 'x'")
  expect_error(score_metrics(handmade_se(), params = list(n_genes = 3L)), "parameter 'params'")
})

test_that("metrics() lists the registered metrics; the documented names exist", {
  need_cli()
  m <- metrics()
  expect_true(all(c("name", "higher_is_better", "best", "source", "description") %in% names(m)))
  expect_true(all(c("pearson_delta", "mse", "mae", "pds_cosine") %in% m$name))
  rd <- tools::Rd_db("simpert")
  text <- paste(unlist(lapply(rd, as.character)), collapse = " ")
  quoted <- unique(regmatches(text, gregexpr("\"[a-z][a-z0-9_]+\"", text))[[1L]])
  named <- gsub("\"", "", quoted)
  looks_like_metric <- grepl("^(pds|pearson|mse|mae|r2|overlap|precision|de_|discrimination|systema_|pereggrn_)", named)
  expect_true(all(named[looks_like_metric] %in% m$name), info = paste(named[looks_like_metric], collapse = ","))
})

test_that("an R metric calibrates and agrees with the built-in metric it re-implements", {
  need_cli()
  my_mae <- function(pred, real, pred_control, real_control) rowMeans(abs(pred - real))
  preds <- c("oracle", "technical_duplicate", "mean", "control")
  mine <- calibrate_metric(my_mae, "my_mae", higher_is_better = FALSE, best = 0,
                           scenarios = tiny_scenario(), n_replicates = 2L, seed = 4,
                           predictors = preds)
  ref <- calibrate_metric("mae", scenarios = tiny_scenario(), n_replicates = 2L, seed = 4,
                          predictors = preds)
  expect_identical(nrow(mine$errors), 0L)
  expect_true(all(mine$table$metric == "my_mae"))
  expect_true(all(ref$table$metric == "mae"))
  expect_identical(levels(mine$table$replicate), c("1", "2"))
  expect_identical(levels(mine$table$predictor), preds)
  key <- function(d) paste(d$scenario, d$replicate, d$predictor, d$perturbation)
  expect_setequal(key(mine$table), key(ref$table))
  expect_equal(mine$table$value, ref$table$value[match(key(mine$table), key(ref$table))],
               tolerance = 1e-9)
  expect_true(all(c("metric", "scenario", "statistic", "mean", "se") %in% names(mine$summary)))
  expect_match(mine$verdict, "^my_mae: ")
  # fewer arguments: the function gets those it names
  two <- function(pred, real) rowMeans(abs(pred - real))
  short <- calibrate_metric(two, "two", higher_is_better = FALSE, best = 0, scenarios = tiny_scenario(),
                            n_replicates = 2L, seed = 4, predictors = preds)
  expect_equal(short$table$value, mine$table$value)
})

test_that("R's own error message reaches the user", {
  need_cli()
  run <- function(f, ...) calibrate_metric(f, "m", scenarios = tiny_scenario(), n_replicates = 1L,
                                           predictors = c("oracle", "mean"), ...)
  boom <- function(pred, real, pred_control, real_control) stop("boom")
  e <- tryCatch(run(boom), error = conditionMessage)
  expect_match(e, "R said: boom")
  expect_false(grepl("RRuntimeError|function \\(pred", e))
  missing_obj <- function(pred, real) rowMeans(pred - real) * get("not_here")
  expect_error(run(missing_obj), "object 'not_here' not found")
  outside <- 3
  uses_outside <- function(pred, real) rowMeans(pred - real) * outside
  expect_error(run(uses_outside), "parameter 'fun' uses .outside., defined outside the function")
  bad_call <- function(pred, real) rep(nrow(pred, real), nrow(pred))
  expect_error(run(bad_call), "unused argument")
  chars <- function(pred, real) rep("a", nrow(pred))
  expect_error(run(chars), "must return a numeric vector.*returned character")
  short <- function(pred, real) 1
  expect_error(run(short), "one number per row of pred")
  expect_error(calibrate_metric(42), "parameter 'fun'")
  expect_error(calibrate_metric(boom, n_replicates = 1.5), "parameter 'n_replicates' must be a whole number")
  expect_error(calibrate_metric(boom, card = "x.pdf"), "parameter 'card'")
})

test_that("partial failure, all-NA values and R warnings give warnings", {
  need_cli()
  two <- c(tiny_scenario(), tiny_scenario("tiny40", n_genes = 40L))
  picky <- function(pred, real) {
    if (ncol(pred) > 50) stop("too many genes for me")
    rowMeans(abs(pred - real))
  }
  expect_warning(res <- calibrate_metric(picky, "picky", higher_is_better = FALSE, scenarios = two,
                                         n_replicates = 1L, predictors = c("oracle", "mean")),
                 "failed on 1 of 2 scenario\\(s\\) \\(tiny\\).*too many genes for me")
  expect_identical(unique(as.character(res$table$scenario)), "tiny40")
  expect_identical(res$errors$scenario, "tiny")
  nas <- function(pred, real) rep(NA_real_, nrow(pred))
  expect_warning(calibrate_metric(nas, "nas", scenarios = tiny_scenario(), n_replicates = 1L,
                                  predictors = c("oracle", "mean")), "returned only NA")
  noisy <- function(pred, real) { warning("careful"); rowMeans(pred - real) }
  expect_warning(calibrate_metric(noisy, "noisy", scenarios = tiny_scenario(), n_replicates = 1L,
                                  predictors = c("oracle", "mean")), "warned: careful")
})

test_that("calibrate_metric leaves nothing behind unless asked; the card goes where asked", {
  need_cli()
  good <- function(pred, real) -rowMeans((pred - real)^2)
  before <- list.files(tempdir(), pattern = "^simpert-cal-")
  res <- calibrate_metric(good, "neg_mse", scenarios = tiny_scenario(), n_replicates = 1L,
                          params = list(n_genes = 40L))
  expect_null(res$card)
  expect_identical(list.files(tempdir(), pattern = "^simpert-cal-"), before)
  png <- tempfile(fileext = ".png")
  res <- calibrate_metric(good, "neg_mse", scenarios = tiny_scenario(), n_replicates = 1L,
                          params = list(n_genes = 40L), card = png)
  expect_identical(res$card, png)
  expect_true(file.exists(png))
  out <- tempfile()
  res <- calibrate_metric(good, "neg_mse", scenarios = tiny_scenario(), n_replicates = 1L,
                          params = list(n_genes = 40L), output_dir = out)
  expect_true(all(file.exists(file.path(out, c("table.csv", "summary.csv", "errors.csv")))))
  expect_identical(unique(as.character(res$table$scenario)), "tiny")
})
