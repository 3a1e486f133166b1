test_that("run_de (native engine) agrees with R DESeq2 and returns results()-like tables", {
  need_cli()
  skip_if_not_installed("DESeq2")
  se <- simulate_screen(tiny_scenario(), params = list(n_genes = 80L, n_replicates = 3L, mean_scale = 20),
                        seed = 7, pseudobulk = TRUE)
  res <- run_de(se, backend = "native", shrink = TRUE)
  perts <- setdiff(levels(se$perturbation), "control")
  expect_s4_class(res, "SimpleList")
  expect_identical(names(res), perts)
  r1 <- res[[1L]]
  expect_s4_class(r1, "DataFrame")
  expect_identical(rownames(r1), rownames(se))
  expect_identical(names(r1), c("baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj",
                                "log2FoldChangeShrunk", "lfcSEShrunk"))
  expect_match(S4Vectors::mcols(r1)$description[2], "log2 fold change \\(MLE\\): perturbation .* vs control")
  dds <- DESeq2::DESeqDataSet(se, design = ~perturbation)
  dds <- suppressMessages(DESeq2::DESeq(dds, quiet = TRUE))
  p <- perts[[1L]]
  r <- DESeq2::results(dds, contrast = c("perturbation", p, "control"))
  mine <- res[[p]]
  keep <- r$baseMean >= 10
  expect_gt(sum(keep), 20)
  expect_gt(stats::cor(mine$log2FoldChange[keep], r$log2FoldChange[keep]), 0.999)
  expect_lt(max(abs(mine$log2FoldChange[keep] - r$log2FoldChange[keep])), 0.02)
  expect_equal(mine$baseMean, r$baseMean, tolerance = 1e-6)
  # backend "r" is DESeq2 in this session: the same numbers as calling it by hand
  in_r <- run_de(se, backend = "r")
  expect_s4_class(in_r[[p]], "DESeqResults")
  expect_equal(in_r[[p]]$log2FoldChange, r$log2FoldChange)
  expect_equal(in_r[[p]]$padj, r$padj)
  long <- run_de(se, format = "long")
  expect_identical(names(long)[1:3], c("perturbation", "gene", "baseMean"))
  expect_identical(levels(long$perturbation), perts)
  expect_identical(nrow(long), length(perts) * nrow(se))
})

test_that("a session that starts from makeExampleDESeqDataSet()", {
  need_cli()
  skip_if_not_installed("DESeq2")
  set.seed(3)
  dds <- DESeq2::makeExampleDESeqDataSet(n = 300, m = 12)
  res <- run_de(dds)
  expect_identical(names(res), "B")
  expect_identical(rownames(res$B), rownames(dds))
  ref <- DESeq2::results(suppressMessages(DESeq2::DESeq(dds, quiet = TRUE)))
  keep <- ref$baseMean >= 10
  expect_gt(stats::cor(res$B$log2FoldChange[keep], ref$log2FoldChange[keep]), 0.999)
  in_r <- run_de(dds, backend = "r", shrink = "normal")
  expect_equal(in_r$B$log2FoldChange, ref$log2FoldChange)
  expect_true("log2FoldChangeShrunk" %in% names(in_r$B))
  # dense or sparse counts, empty rowData: all the same to run_de
  se <- SummarizedExperiment::SummarizedExperiment(
    assays = list(counts = methods::as(DESeq2::counts(dds), "CsparseMatrix")),
    colData = S4Vectors::DataFrame(condition = dds$condition))
  sp <- run_de(se, group = "condition")
  expect_equal(sp$B$log2FoldChange, res$B$log2FoldChange, tolerance = 1e-10)
  # no dimnames at all
  bare <- se
  dimnames(bare) <- NULL
  nb <- run_de(bare, group = "condition")
  expect_identical(rownames(nb$B), paste0("gene", seq_len(nrow(se))))
  expect_equal(nb$B$pvalue, res$B$pvalue, tolerance = 1e-10)
  expect_error(score_metrics(dds, predictors = "mean"), "at least two perturbations besides the control")
  two <- dds
  two$batch <- factor(rep(1:2, 6))
  DESeq2::design(two) <- ~ batch + condition
  expect_error(run_de(two), "use backend = \"r\"")
  expect_identical(names(run_de(two, backend = "r")), "B")
  # scoring needs two perturbations besides the control to split; give it four levels
  dds$condition <- factor(rep(c("A", "B", "C", "D"), each = 3))
  s <- score_metrics(dds, predictors = c("mean", "control"), metrics = c("pearson_delta", "mse"))
  expect_identical(levels(s$predictor), c("mean", "control"))
  expect_true(all(is.finite(s$value[s$metric == "mse"])))
})

test_that("a session that starts from a SingleCellExperiment of sparse counts", {
  need_cli()
  sce <- handmade_sce(n_genes = 40L, cells = 12L)
  res <- run_de(sce, group = "guide_target", replicate = "batch")
  expect_error(run_de(sce, group = "guide_target"), "single sample")
  expect_identical(names(res), c("P1", "P2", "P3"))
  expect_identical(rownames(res$P1), rownames(sce))
  pb <- pseudobulk(sce, by = c("guide_target", "batch"))
  by_hand <- run_de(pb, group = "guide_target")
  expect_equal(by_hand$P2$pvalue, res$P2$pvalue)
  sim <- simulate_screen(tiny_scenario(), seed = 4)
  de <- run_de(sim)
  expect_identical(names(de), setdiff(levels(sim$perturbation), "control"))
  if (requireNamespace("DESeq2", quietly = TRUE)) {
    dds <- DESeq2::DESeqDataSet(pseudobulk(sim), design = ~perturbation)
    expect_s4_class(dds, "DESeqDataSet")
  }
})

test_that("run_de checks its arguments in R", {
  need_cli()
  se <- handmade_se()
  expect_error(run_de(se, control = "nope"), "parameter 'control'")
  expect_error(run_de(se, backend = "edgeR"), "should be one of")
  expect_error(run_de(se, shrink = "magic"), "parameter 'shrink'")
  expect_error(run_de(se, format = "wide"), "should be one of")
  expect_error(run_de(matrix(1)), "parameter 'se'")
  one <- se[, se$replicate == "1"]
  expect_error(run_de(one), "single sample")
})
