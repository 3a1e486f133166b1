test_that("a SummarizedExperiment survives the directory format", {
  se <- handmade_se()
  dir <- tempfile()
  write_screen_dir(se, dir)
  expect_true(all(file.exists(file.path(dir, c("counts.mtx", "obs.csv", "var.csv", "meta.json",
                                               "log2fc.csv", "perturbations.csv")))))
  # the files keep the command line's conventions: 0-based, "" for no target
  obs <- utils::read.csv(file.path(dir, "obs.csv"), stringsAsFactors = FALSE)
  expect_identical(sort(unique(obs$replicate)), 0:2)
  expect_true(all(is.na(obs$target[obs$perturbation == "control"]) | obs$target[obs$perturbation == "control"] == ""))
  pert <- utils::read.csv(file.path(dir, "perturbations.csv"), stringsAsFactors = FALSE)
  expect_identical(pert$target_index, c(1L, 2L))
  back <- read_screen_dir(dir)
  expect_s4_class(back, "SummarizedExperiment")
  expect_false(methods::is(back, "SingleCellExperiment"))
  expect_identical(dim(back), dim(se))
  expect_equal(SummarizedExperiment::assay(back), SummarizedExperiment::assay(se))
  expect_identical(levels(back$perturbation), levels(se$perturbation))
  expect_identical(back$is_control, se$is_control)
  expect_identical(back$target, se$target)
  expect_true(all(is.na(back$target[back$is_control])))
  expect_identical(back$replicate, se$replicate)
  expect_equal(back$size_factor, se$size_factor, tolerance = 1e-14)
  rd <- SummarizedExperiment::rowData(back)
  expect_equal(rd$true_log2fc, SummarizedExperiment::rowData(se)$true_log2fc, tolerance = 1e-14)
  expect_identical(rd$is_target, rownames(se) %in% c("g00001", "g00002"))
  md <- S4Vectors::metadata(back)
  expect_identical(md$truth$targets, S4Vectors::metadata(se)$truth$targets)
  expect_identical(md$truth$perturbations$target_index, c(2L, 3L))
  expect_identical(rownames(se)[md$truth$perturbations$target_index], unname(md$truth$targets))
})

test_that("an object with empty rowData and colData beyond the design is written with {} types", {
  counts <- matrix(stats::rpois(40, 10), nrow = 8, dimnames = list(NULL, NULL))
  se <- SummarizedExperiment::SummarizedExperiment(
    assays = list(counts = counts),
    colData = S4Vectors::DataFrame(condition = factor(rep(c("A", "B"), c(2, 3)))))
  dir <- write_screen_dir(se, tempfile(), group = "condition")
  meta <- jsonlite::fromJSON(file.path(dir, "meta.json"), simplifyVector = FALSE)
  expect_true(is.list(meta$var_types) && length(meta$var_types) == 0L)
  expect_match(paste(readLines(file.path(dir, "meta.json")), collapse = ""), '"var_types": \\{\\}')
  back <- read_screen_dir(dir)
  expect_identical(levels(back$perturbation), c("A", "B"))
  expect_identical(rownames(back), paste0("gene", 1:8))
  expect_error(write_screen_dir(se, tempfile()), "parameter 'group'")
  expect_error(write_screen_dir(se, tempfile(), group = "nope"), "parameter 'group' must name a colData column")
  expect_error(write_screen_dir(se, tempfile(), group = "condition", control = "C"), "parameter 'control'")
})

test_that("cells travel as a SingleCellExperiment of sparse counts", {
  sce <- handmade_sce()
  dir <- write_screen_dir(sce, tempfile(), group = "guide_target")
  back <- read_screen_dir(dir)
  expect_s4_class(back, "SingleCellExperiment")
  expect_s4_class(SummarizedExperiment::assay(back), "dgCMatrix")
  expect_equal(as.matrix(SummarizedExperiment::assay(back)), as.matrix(SummarizedExperiment::assay(sce)))
  expect_identical(levels(back$perturbation), c("ctrl", "P1", "P2", "P3"))
  expect_identical(back$batch, sce$batch)
  se <- read_screen_dir(dir, class = "SummarizedExperiment")
  expect_true(is.matrix(SummarizedExperiment::assay(se)))
})

test_that("write_screen_dir rejects what the command line cannot use", {
  se <- handmade_se()
  expect_error(write_screen_dir(se, tempfile(), control = "ctrl"), "parameter 'control'")
  bad <- se
  SummarizedExperiment::assay(bad)[1, 1] <- -1L
  expect_error(write_screen_dir(bad, tempfile()), "non-negative integer")
  expect_error(write_screen_dir(matrix(1), tempfile()), "SummarizedExperiment")
  expect_error(read_screen_dir(tempdir()), "counts.mtx")
  one <- se[, se$perturbation == "control"]
  expect_error(write_screen_dir(one, tempfile()), "at least two levels")
})

test_that("pseudobulk sums cells by perturbation and replicate", {
  sce <- handmade_sce()
  pb <- pseudobulk(sce, by = c("guide_target", "batch"))
  expect_identical(colnames(pb)[1:2], c("ctrl_r1", "ctrl_r2"))
  expect_true(is.matrix(SummarizedExperiment::assay(pb)))
  expect_identical(sum(SummarizedExperiment::assay(pb)), as.integer(sum(SummarizedExperiment::assay(sce))))
  expect_identical(pb$n_cells, rep(4L, 8))
  expect_error(pseudobulk(sce, by = "nope"), "parameter 'by'")
})
