test_that("simpert_cli honours the option and the environment variable", {
  old <- options(simpert.cli = NULL)
  on.exit(options(old), add = TRUE)
  withr_env <- Sys.getenv("SIMPERT_CLI", unset = NA)
  on.exit(if (is.na(withr_env)) Sys.unsetenv("SIMPERT_CLI") else Sys.setenv(SIMPERT_CLI = withr_env),
          add = TRUE)
  Sys.setenv(SIMPERT_CLI = file.path(tempdir(), "no-such-simpert"))
  expect_error(simpert_cli(), "SIMPERT_CLI names")
  expect_false(simpert_available())
  fake <- file.path(tempdir(), "fake-simpert")
  writeLines("#!/bin/sh\nexit 0", fake)
  Sys.setenv(SIMPERT_CLI = fake)
  expect_identical(simpert_cli(), fake)
  options(simpert.cli = c(fake, "--extra"))
  expect_identical(simpert_cli(), c(fake, "--extra"))
  options(simpert.cli = "/no/such/program")
  expect_error(simpert_cli(), "option 'simpert.cli'")
})

test_that("command-line errors come back as R errors with the message", {
  need_cli()
  expect_error(simulate_screen("no_such_scenario"), "unknown scenario 'no_such_scenario'")
  expect_error(simulate_screen(tiny_scenario(), params = list(n_genes = -3)), "n_genes")
  expect_error(simulate_screen(tiny_scenario(), seed = -1), "seed")
  expect_error(score_metrics(tiny_scenario(), metrics = "not_a_metric"), "unknown metric")
})

test_that("the command line's messages are cleaned for R", {
  msg <- simpert:::cli_message(c(
    "\u256d\u2500 Error \u2500\u256e", "\u2502 No such option: --bogus \u2502", "\u2570\u2500\u2500\u256f"), "de", 2)
  expect_false(grepl("[\u2500-\u257f]", msg))
  expect_match(msg, "No such option")
  msg <- simpert:::cli_message("error: ScreenParams.__init__() got an unexpected keyword argument 'x'", "simulate", 2)
  expect_identical(msg, "unknown simulation parameter 'x' (see scenario_params())")
  msg <- simpert:::cli_message("error: parameter 'adata' must be an AnnData with obs['perturbation']", "de", 2)
  expect_false(grepl("adata|AnnData|obs", msg))
})

test_that("scenarios() lists the shipped scenarios", {
  need_cli()
  sc <- scenarios()
  expect_s3_class(sc, "data.frame")
  expect_true(all(c("name", "kind", "description") %in% names(sc)))
  expect_true(all(c("noise_only", "sparse_strong") %in% sc$name))
})

test_that("every exported function has an example, and none is hidden from R CMD check", {
  rd <- tools::Rd_db("simpert")
  text <- vapply(rd, function(x) paste(as.character(x), collapse = ""), character(1))
  expect_false(any(grepl("\\\\dontrun", text)), info = paste(names(rd)[grepl("\\\\dontrun", text)], collapse = ", "))
  exported <- getNamespaceExports("simpert")
  has_example <- unlist(lapply(rd, function(x) {
    tags <- vapply(x, function(e) attr(e, "Rd_tag"), character(1))
    if (!"\\examples" %in% tags) return(character())
    al <- x[tags == "\\alias"]
    vapply(al, function(a) paste(as.character(a), collapse = ""), character(1))
  }))
  expect_true(all(exported %in% has_example), info = paste(setdiff(exported, has_example), collapse = ", "))
})
