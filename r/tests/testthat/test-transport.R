test_that("a SummarizedExperiment survives the directory format", {
  se <- handmade_se()
  dir <- tempfile()
  write_screen_dir(se, dir)
  expect_true(all(file.exists(file.path(dir, c("counts.mtx", "obs.csv", "var.csv", "meta.json",
                                               "log2fc.csv", "perturbations.csv")))))
  back <- read_screen_dir(dir)
  expect_identical(dim(back), dim(se))
  expect_equal(as.matrix(SummarizedExperiment::assay(back)), SummarizedExperiment::assay(se))
  expect_identical(levels(back$perturbation), levels(se$perturbation))
  expect_identical(back$is_control, se$is_control)
  expect_identical(back$target, se$target)
  expect_identical(back$replicate, se$replicate)
  expect_equal(back$size_factor, se$size_factor, tolerance = 1e-14)
  md <- S4Vectors::metadata(back)
  expect_equal(md$truth$log2fc, S4Vectors::metadata(se)$truth$log2fc, tolerance = 1e-14)
  expect_identical(md$truth$targets, S4Vectors::metadata(se)$truth$targets)
  expect_true(all(SummarizedExperiment::rowData(back)$is_target ==
                    rownames(se) %in% c("g00001", "g00002")))
})

test_that("write_screen_dir rejects what the command line cannot use", {
  se <- handmade_se()
  expect_error(write_screen_dir(se, tempfile(), control = "ctrl"), "parameter 'control'")
  bad <- se
  SummarizedExperiment::assay(bad)[1, 1] <- -1L
  expect_error(write_screen_dir(bad, tempfile()), "non-negative integer")
  expect_error(write_screen_dir(matrix(1), tempfile()), "SummarizedExperiment")
  expect_error(read_screen_dir(tempdir()), "counts.mtx")
})
