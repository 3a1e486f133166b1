# Golden DESeq2 results for the native engine's parity tests.
#
# Usage (from the repository root):  Rscript tests/golden/make_golden.R tests/golden [design ...]
#
# For each design <name> with <name>_counts.csv (genes x samples) and <name>_coldata.csv
# (sample, perturbation) in the directory, fits DESeq2 once with design ~ perturbation
# (control as the reference level, default arguments) and writes:
#   <name>_results.csv     results() per perturbation vs control (alpha 0.1) with the
#                          lfcShrink(type = "normal") log2 fold change and SE added
#   <name>_dispersions.csv baseMean, dispGeneEst, dispFit, dispMAP, dispersion, maxCooks, replace
#   <name>_sizefactors.csv size factor per sample
#   <name>_info.csv        trend coefficients, prior variances, DESeq2 version
suppressPackageStartupMessages(library(DESeq2))

args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args) >= 1) args[1] else "tests/golden"
designs <- if (length(args) >= 2) args[-1] else
  sub("_counts\\.csv$", "", list.files(dir, pattern = "_counts\\.csv$"))

for (name in designs) {
  counts <- as.matrix(read.csv(file.path(dir, paste0(name, "_counts.csv")), row.names = 1,
                               check.names = FALSE))
  storage.mode(counts) <- "integer"
  coldata <- read.csv(file.path(dir, paste0(name, "_coldata.csv")), stringsAsFactors = FALSE)
  levels <- c("control", setdiff(unique(coldata$perturbation), "control"))
  coldata$perturbation <- factor(coldata$perturbation, levels = levels)
  rownames(coldata) <- coldata$sample
  dds <- DESeqDataSetFromMatrix(counts[, coldata$sample], coldata, design = ~ perturbation)
  dds <- DESeq(dds, quiet = TRUE)
  out <- list()
  bpv <- NA
  for (p in levels[-1]) {
    res <- results(dds, contrast = c("perturbation", p, "control"), alpha = 0.1)
    shr <- lfcShrink(dds, contrast = c("perturbation", p, "control"), type = "normal", quiet = TRUE)
    bpv <- priorInfo(shr)$betaPriorVar[paste0("perturbation", make.names(p))]
    out[[p]] <- data.frame(perturbation = p, gene = rownames(res), baseMean = res$baseMean,
                           log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE, stat = res$stat,
                           pvalue = res$pvalue, padj = res$padj,
                           log2FoldChange_normal = shr$log2FoldChange, lfcSE_normal = shr$lfcSE)
  }
  write.csv(do.call(rbind, out), file.path(dir, paste0(name, "_results.csv")), row.names = FALSE)
  mc <- mcols(dds)
  disp <- data.frame(gene = rownames(dds), baseMean = mc$baseMean, dispGeneEst = mc$dispGeneEst,
                     dispFit = mc$dispFit, dispMAP = mc$dispMAP, dispersion = mc$dispersion,
                     maxCooks = mc$maxCooks,
                     replace = if (is.null(mc$replace)) NA else mc$replace)
  write.csv(disp, file.path(dir, paste0(name, "_dispersions.csv")), row.names = FALSE)
  write.csv(data.frame(sample = colnames(dds), sizeFactor = sizeFactors(dds)),
            file.path(dir, paste0(name, "_sizefactors.csv")), row.names = FALSE)
  fn <- dispersionFunction(dds)
  coefs <- attr(fn, "coefficients")
  info <- data.frame(
    key = c("fitType", "asymptDisp", "extraPois", "dispPriorVar", "varLogDispEsts", "betaPriorVar",
            "DESeq2"),
    value = c(attr(fn, "fitType"), if (is.null(coefs)) c(NA, NA) else coefs,
              attr(fn, "dispPriorVar"), attr(fn, "varLogDispEsts"), bpv,
              as.character(packageVersion("DESeq2"))))
  write.csv(info, file.path(dir, paste0(name, "_info.csv")), row.names = FALSE)
  cat(name, ": done\n")
}
