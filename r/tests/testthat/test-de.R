test_that("run_de (native engine) agrees with R DESeq2 on a simulated pseudobulk screen", {
  need_cli()
  skip_if_not_installed("DESeq2")
  se <- simulate_screen(tiny_scenario(), params = list(n_genes = 80L, n_replicates = 3L, mean_scale = 20),
                        seed = 7, pseudobulk = TRUE)
  res <- run_de(se, backend = "native", shrink = TRUE)
  expect_true(all(c("perturbation", "gene", "base_mean", "log2fc", "lfc_se", "pvalue", "padj",
                    "log2fc_shrunk") %in% names(res)))
  perts <- setdiff(levels(se$perturbation), "control")
  expect_setequal(unique(res$perturbation), perts)
  expect_identical(nrow(res), length(perts) * nrow(se))
  dds <- DESeq2::DESeqDataSet(se, design = ~perturbation)
  dds <- suppressMessages(DESeq2::DESeq(dds, quiet = TRUE))
  p <- perts[[1L]]
  r <- as.data.frame(DESeq2::results(dds, contrast = c("perturbation", p, "control")))
  mine <- res[res$perturbation == p, ]
  mine <- mine[match(rownames(r), mine$gene), ]
  keep <- r$baseMean >= 10
  expect_gt(sum(keep), 20)
  expect_gt(stats::cor(mine$log2fc[keep], r$log2FoldChange[keep]), 0.999)
  expect_lt(max(abs(mine$log2fc[keep] - r$log2FoldChange[keep])), 0.02)
  expect_equal(mine$base_mean, r$baseMean, tolerance = 1e-6)
})

test_that("run_de rejects a bad control and a bad backend", {
  need_cli()
  se <- handmade_se()
  expect_error(run_de(se, control = "nope"), "parameter 'control'")
  expect_error(run_de(se, backend = "edgeR"), "should be one of")
})
