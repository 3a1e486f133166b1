# Golden DESeq2 results for the native engine's parity tests.
#
# Usage (from the repository root):  Rscript tests/golden/make_golden.R tests/golden [design ...]
#
# For each design <name> with <name>_counts.csv (genes x samples) and <name>_coldata.csv
# (sample, covariates..., perturbation) in the directory, fits DESeq2 once with design
# ~ perturbation (control as the reference level, default arguments except those in the
# optional <name>_options.csv: key "fitType", and key "design" for a formula with covariates
# such as "~ replicate + perturbation"; character covariates become factors with sorted
# levels, numeric ones enter as they are) and writes, numbers rounded to 10 significant digits:
#   <name>_results.csv     results() per perturbation vs control (alpha 0.1) with the
#                          lfcShrink(type = "normal") log2 fold change and SE added (for the
#                          first 20 perturbations); <name>_results.csv.gz above 10,000 rows
#   <name>_dispersions.csv baseMean, dispGeneEst, dispGeneIter, dispFit, dispMAP, dispIter,
#                          dispOutlier, dispersion, maxCooks, replace, betaConv, betaIter
#   <name>_filter.csv      independent-filtering threshold and quantile per perturbation
#   <name>_sizefactors.csv size factor per sample
#   <name>_info.csv        trend type and coefficients, prior variances, DESeq2 version
suppressPackageStartupMessages(library(DESeq2))

args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args) >= 1) args[1] else "tests/golden"
designs <- if (length(args) >= 2) args[-1] else
  sub("_counts\\.csv$", "", list.files(dir, pattern = "_counts\\.csv$"))

sig <- function(df) {
  for (k in names(df)) if (is.double(df[[k]])) df[[k]] <- signif(df[[k]], 10)
  df
}

for (name in designs) {
  counts <- as.matrix(read.csv(file.path(dir, paste0(name, "_counts.csv")), row.names = 1,
                               check.names = FALSE))
  storage.mode(counts) <- "integer"
  coldata <- read.csv(file.path(dir, paste0(name, "_coldata.csv")), stringsAsFactors = FALSE)
  levels <- c("control", setdiff(unique(coldata$perturbation), "control"))
  coldata$perturbation <- factor(coldata$perturbation, levels = levels)
  rownames(coldata) <- coldata$sample
  fitType <- "parametric"
  design <- ~ perturbation
  opt_file <- file.path(dir, paste0(name, "_options.csv"))
  if (file.exists(opt_file)) {
    opts <- read.csv(opt_file, stringsAsFactors = FALSE)
    if ("fitType" %in% opts$key) fitType <- opts$value[opts$key == "fitType"]
    if ("design" %in% opts$key) design <- as.formula(opts$value[opts$key == "design"])
  }
  for (k in setdiff(names(coldata), c("sample", "perturbation")))
    if (is.character(coldata[[k]])) coldata[[k]] <- factor(coldata[[k]], levels = sort(unique(coldata[[k]])))
  dds <- DESeqDataSetFromMatrix(counts[, coldata$sample], coldata, design = design)
  dds <- DESeq(dds, fitType = fitType, quiet = TRUE)
  out <- list()
  filt <- list()
  bpv <- NA
  for (p in levels[-1]) {
    res <- results(dds, contrast = c("perturbation", p, "control"), alpha = 0.1)
    lfc_n <- se_n <- rep(NA_real_, nrow(res))
    if (match(p, levels) <= 21) {
      shr <- lfcShrink(dds, contrast = c("perturbation", p, "control"), type = "normal", quiet = TRUE)
      bpv <- priorInfo(shr)$betaPriorVar[paste0("perturbation", make.names(p))]
      lfc_n <- shr$log2FoldChange
      se_n <- shr$lfcSE
    }
    out[[p]] <- data.frame(perturbation = p, gene = rownames(res), baseMean = res$baseMean,
                           log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE, stat = res$stat,
                           pvalue = res$pvalue, padj = res$padj,
                           log2FoldChange_normal = lfc_n, lfcSE_normal = se_n)
    md <- metadata(res)
    filt[[p]] <- data.frame(perturbation = p, filterThreshold = unname(md$filterThreshold),
                            filterTheta = md$filterTheta, maxRejections = max(md$filterNumRej$numRej))
  }
  allres <- sig(do.call(rbind, out))
  res_file <- file.path(dir, paste0(name, "_results.csv"))
  if (nrow(allres) > 10000) {  # large designs: gzip-compressed
    unlink(res_file)
    con <- gzfile(paste0(res_file, ".gz"), "w")
    write.csv(allres, con, row.names = FALSE)
    close(con)
  } else {
    write.csv(allres, res_file, row.names = FALSE)
  }
  write.csv(sig(do.call(rbind, filt)), file.path(dir, paste0(name, "_filter.csv")), row.names = FALSE)
  mc <- mcols(dds)
  col <- function(k) if (is.null(mc[[k]])) NA else mc[[k]]
  disp <- data.frame(gene = rownames(dds), baseMean = mc$baseMean, dispGeneEst = mc$dispGeneEst,
                     dispGeneIter = col("dispGeneIter"), dispFit = mc$dispFit, dispMAP = mc$dispMAP,
                     dispIter = col("dispIter"), dispOutlier = col("dispOutlier"),
                     dispersion = mc$dispersion, maxCooks = mc$maxCooks, replace = col("replace"),
                     betaConv = col("betaConv"), betaIter = col("betaIter"))
  write.csv(sig(disp), file.path(dir, paste0(name, "_dispersions.csv")), row.names = FALSE)
  write.csv(sig(data.frame(sample = colnames(dds), sizeFactor = sizeFactors(dds))),
            file.path(dir, paste0(name, "_sizefactors.csv")), row.names = FALSE)
  fn <- dispersionFunction(dds)
  coefs <- attr(fn, "coefficients")
  num <- function(x) if (is.null(x)) NA else format(signif(x, 10), digits = 10)
  info <- data.frame(
    key = c("fitType", "asymptDisp", "extraPois", "meanDisp", "dispPriorVar", "varLogDispEsts",
            "betaPriorVar", "DESeq2"),
    value = c(attr(fn, "fitType"), if (is.null(coefs)) c(NA, NA) else num(coefs),
              num(attr(fn, "mean")), num(attr(fn, "dispPriorVar")), num(attr(fn, "varLogDispEsts")),
              num(unname(bpv)), as.character(packageVersion("DESeq2"))))
  write.csv(info, file.path(dir, paste0(name, "_info.csv")), row.names = FALSE)
  cat(name, ": done\n")
}
