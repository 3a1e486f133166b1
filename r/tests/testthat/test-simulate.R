test_that("simulate_screen returns a SummarizedExperiment with the truth", {
  need_cli()
  se <- simulate_screen(tiny_scenario(), seed = 3)
  expect_s4_class(se, "SummarizedExperiment")
  expect_identical(nrow(se), 60L)
  expect_s4_class(SummarizedExperiment::assay(se), "dgCMatrix")
  expect_identical(levels(se$perturbation)[1], "control")
  expect_identical(se$is_control, as.character(se$perturbation) == "control")
  md <- S4Vectors::metadata(se)
  lfc <- md$truth$log2fc
  expect_identical(dim(lfc), c(8L, 60L))
  expect_identical(colnames(lfc), rownames(se))
  expect_setequal(rownames(lfc), setdiff(levels(se$perturbation), "control"))
  expect_identical(names(md$truth$targets), rownames(lfc))
  expect_true(all(md$truth$targets %in% rownames(se)))
  # CRISPRi: the target gene is knocked down in the truth
  idx <- cbind(rownames(lfc), md$truth$targets)
  expect_true(all(lfc[idx] < 0))
  expect_identical(sum(SummarizedExperiment::rowData(se)$is_target), length(unique(md$truth$targets)))
  expect_identical(md$params$n_genes, 60L)
  # cells carry the target of their perturbation
  pert <- as.character(se$perturbation)
  expect_identical(se$target[pert != "control"], unname(md$truth$targets[pert[pert != "control"]]))
})

test_that("the same seed gives the same counts; pseudobulk is dense and DESeq2-ready", {
  need_cli()
  a <- simulate_screen(tiny_scenario(), params = list(n_genes = 30L), seed = 5, pseudobulk = TRUE)
  b <- simulate_screen(tiny_scenario(), params = list(n_genes = 30L), seed = 5, pseudobulk = TRUE)
  c <- simulate_screen(tiny_scenario(), params = list(n_genes = 30L), seed = 6, pseudobulk = TRUE)
  counts <- SummarizedExperiment::assay(a)
  expect_true(is.matrix(counts) && is.integer(counts))
  expect_identical(counts, SummarizedExperiment::assay(b))
  expect_false(identical(counts, SummarizedExperiment::assay(c)))
  expect_identical(ncol(a), 9L * 2L)
  skip_if_not_installed("DESeq2")
  dds <- DESeq2::DESeqDataSet(a, design = ~perturbation)
  expect_identical(levels(dds$perturbation)[1], "control")
})

test_that("a list of parameters simulates with the screen defaults", {
  need_cli()
  se <- simulate_screen(list(n_genes = 20L, n_perturbations = 3L, n_control_cells = 20L,
                             cells_per_perturbation = 10), seed = 1)
  expect_identical(nrow(se), 20L)
  expect_identical(nrow(S4Vectors::metadata(se)$truth$log2fc), 3L)
})
