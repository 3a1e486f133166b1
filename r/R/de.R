#' Differential expression of every perturbation against the control
#'
#' One fit, one contrast per perturbation, returned the way `DESeq2::results()` returns
#' them. `backend = "r"` runs DESeq2 in this R session; `"native"` (simpert's vectorised
#' DESeq2 engine) and `"pydeseq2"` run in the simpert worker. Cells (a
#' `SingleCellExperiment`) are summed into pseudobulk samples by perturbation and
#' replicate first (see [pseudobulk()]).
#'
#' @param se A `SummarizedExperiment`, `SingleCellExperiment` or `DESeqDataSet` with
#'   non-negative integer counts (dense or sparse); `rowData` and the rest of `colData`
#'   may be empty.
#' @param backend `"native"`, `"pydeseq2"` or `"r"` (DESeq2 here).
#' @param control The control level of `group`; default `metadata(se)$control`, else
#'   `"control"` when it is a level, else the first level.
#' @param shrink `FALSE` (none), `TRUE` or `"normal"` (DESeq2's normal prior; native and r
#'   backends), `"ash"` (adaptive shrinkage; native and pydeseq2) or `"apeglm"` (pydeseq2):
#'   adds `log2FoldChangeShrunk` and `lfcSEShrunk` to each table.
#' @param group The `colData` column holding the perturbation (condition) of each sample;
#'   default `"perturbation"`, or for a `DESeqDataSet` without it the last variable of
#'   its design.
#' @param format `"results"`: a `SimpleList` of `DataFrame`s (`DESeqResults` when DESeq2
#'   is installed), one per perturbation, named by it, with gene rownames, the columns
#'   of `DESeq2::results()` (`baseMean`, `log2FoldChange`, `lfcSE`, `stat`, `pvalue`,
#'   `padj`) and their descriptions in `mcols()`; `"long"`: one
#'   `data.frame` with a row per perturbation and gene (`perturbation` and `gene`
#'   first).
#' @param replicate For cells (a `SingleCellExperiment`): the `colData` column of
#'   biological replicates; cells are summed by `group` and `replicate` into pseudobulk
#'   samples. Default `"replicate"` when there is one.
#' @return See `format`.
#' @examplesIf simpert_available()
#' se <- simulate_screen(params = list(n_genes = 60L, n_perturbations = 2L), seed = 1,
#'                       pseudobulk = TRUE)
#' res <- run_de(se)
#' names(res)
#' head(res[[1]])
#' head(run_de(se, format = "long"))
#' @export
run_de <- function(se, backend = c("native", "pydeseq2", "r"), control = NULL, shrink = FALSE,
                   group = NULL, format = c("results", "long"), replicate = NULL) {
  backend <- match.arg(backend)
  format <- match.arg(format)
  if (!methods::is(se, "SummarizedExperiment")) {
    stop("parameter 'se' must be a SummarizedExperiment (or DESeqDataSet, SingleCellExperiment); got ",
         class(se)[[1L]], call. = FALSE)
  }
  if (isTRUE(shrink)) shrink <- "normal"
  if (isFALSE(shrink)) shrink <- NULL
  if (!is.null(shrink)) {
    if (!is.character(shrink) || length(shrink) != 1L || !shrink %in% c("normal", "ash", "apeglm")) {
      stop("parameter 'shrink' must be FALSE, TRUE, \"normal\", \"ash\" or \"apeglm\"; got ",
           paste(utils::capture.output(utils::str(shrink)), collapse = " "), call. = FALSE)
    }
  }
  se <- with_names(se)
  design <- screen_design(se, group = group, control = control)
  cd <- SummarizedExperiment::colData(se)
  if (is.null(replicate) && "replicate" %in% names(cd)) replicate <- "replicate"
  if (!is.null(replicate)) {
    check_scalar(replicate, "replicate", "character")
    if (!replicate %in% names(cd)) {
      stop(sprintf("parameter 'replicate' must name a colData column; got %s (columns: %s)",
                   sQuote(replicate), paste(names(cd), collapse = ", ")), call. = FALSE)
    }
  }
  if (methods::is(se, "SingleCellExperiment")) {
    se2 <- se
    se2$perturbation <- design$perturbation
    se <- pseudobulk(se2, by = c("perturbation", replicate))
    design <- screen_design(se, group = "perturbation", control = design$control)
  }
  check_replicates(design)
  if (!identical(backend, "r") && methods::is(se, "DESeqDataSet")) {
    vars <- all.vars(DESeq2::design(se))
    if (length(vars) > 1L) {
      stop(sprintf(paste0("parameter 'backend': \"%s\" fits ~ %s only, and design(se) is %s; ",
                          "use backend = \"r\" for a design with several variables"),
                   backend, design$group, paste(deparse(DESeq2::design(se)), collapse = "")), call. = FALSE)
    }
  }
  if (identical(backend, "r")) {
    res <- de_in_r(se, design, shrink)
  } else {
    tmp <- scratch_dir("simpert-de-")
    input <- file.path(tmp, "screen")
    write_screen_dir(se, input, control = design$control, group = design$group)
    out <- file.path(tmp, "de.csv")
    run_cli(c("de", input, "-o", out, "--backend", backend, "--control", design$control,
              if (!is.null(shrink)) c("--shrink", shrink)))
    res <- de_tables(utils::read.csv(out, stringsAsFactors = FALSE, check.names = FALSE,
                                     na.strings = c("NA", "NaN", "")),
                     genes = rownames(se), levels = levels(design$perturbation)[-1L],
                     group = design$group, control = design$control)
  }
  if (identical(format, "long")) return(long_table(res))
  res
}

check_replicates <- function(design) {
  n <- table(design$perturbation)
  if (all(n < 2L)) {
    stop(sprintf(paste0("every level of colData(se)$%s has a single sample, so dispersions cannot be ",
                        "estimated; simulate with n_replicates >= 2 (simulate_screen(n_replicates = 3)), ",
                        "give replicates, or for cells name their replicate column (replicate = ...)"),
                 design$group), call. = FALSE)
  }
}

# Long table of the command line -> a SimpleList of results()-like DataFrames.
de_tables <- function(tab, genes, levels, group = "perturbation", control = "control") {
  rename <- c(base_mean = "baseMean", log2fc = "log2FoldChange", lfc_se = "lfcSE", stat = "stat",
              pvalue = "pvalue", padj = "padj", log2fc_shrunk = "log2FoldChangeShrunk",
              lfc_se_shrunk = "lfcSEShrunk")
  out <- lapply(levels, function(p) {
    d <- tab[as.character(tab$perturbation) == p, , drop = FALSE]
    d <- d[match(genes, as.character(d$gene)), , drop = FALSE]
    cols <- intersect(names(rename), names(d))
    df <- S4Vectors::DataFrame(d[, cols, drop = FALSE], row.names = genes)
    names(df) <- rename[cols]
    S4Vectors::mcols(df) <- S4Vectors::DataFrame(
      type = ifelse(names(df) == "baseMean", "intermediate", "results"),
      description = de_descriptions(names(df), group, p, control))
    if (requireNamespace("DESeq2", quietly = TRUE)) df <- DESeq2::DESeqResults(df)
    df
  })
  S4Vectors::SimpleList(stats::setNames(out, levels))
}

de_descriptions <- function(cols, group, p, control) {
  contrast <- sprintf("%s %s vs %s", group, p, control)
  unname(c(baseMean = "mean of normalized counts for all samples",
           log2FoldChange = paste("log2 fold change (MLE):", contrast),
           lfcSE = paste("standard error:", contrast),
           stat = paste("Wald statistic:", contrast),
           pvalue = paste("Wald test p-value:", contrast),
           padj = "BH adjusted p-values",
           log2FoldChangeShrunk = paste("log2 fold change (normal prior):", contrast),
           lfcSEShrunk = paste("posterior SD (normal prior):", contrast))[cols])
}

long_table <- function(res) {
  parts <- lapply(names(res), function(p) {
    d <- as.data.frame(res[[p]], optional = TRUE)
    d <- d[, intersect(c("baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj",
                         "log2FoldChangeShrunk", "lfcSEShrunk"), names(d)), drop = FALSE]
    cbind(data.frame(perturbation = p, gene = rownames(res[[p]]), stringsAsFactors = FALSE), d)
  })
  out <- do.call(rbind, parts)
  out$perturbation <- factor(out$perturbation, levels = names(res))
  rownames(out) <- NULL
  out
}

de_in_r <- function(se, design, shrink) {
  if (!requireNamespace("DESeq2", quietly = TRUE)) {
    stop("parameter 'backend': \"r\" needs the DESeq2 package, which is not installed", call. = FALSE)
  }
  if (!is.null(shrink) && !identical(shrink, "normal")) {
    stop(sprintf("parameter 'shrink': backend \"r\" offers \"normal\"; got %s", sQuote(shrink)),
         call. = FALSE)
  }
  if (methods::is(se, "DESeqDataSet") && design$group %in% all.vars(DESeq2::design(se))) {
    dds <- se
    dds[[design$group]] <- design$perturbation
  } else {
    counts <- SummarizedExperiment::assay(se, if ("counts" %in% SummarizedExperiment::assayNames(se)) "counts" else 1L)
    counts <- as.matrix(counts)
    storage.mode(counts) <- "integer"
    cd <- S4Vectors::DataFrame(group = design$perturbation, row.names = colnames(se))
    names(cd) <- design$group
    dds <- DESeq2::DESeqDataSetFromMatrix(counts, cd, stats::as.formula(paste("~", design$group)))
  }
  dds <- suppressMessages(DESeq2::DESeq(dds, quiet = TRUE))
  levels <- levels(design$perturbation)[-1L]
  out <- lapply(levels, function(p) {
    r <- DESeq2::results(dds, contrast = c(design$group, p, design$control))
    if (identical(shrink, "normal")) {
      s <- suppressMessages(DESeq2::lfcShrink(dds, contrast = c(design$group, p, design$control),
                                              res = r, type = "normal", quiet = TRUE))
      r$log2FoldChangeShrunk <- s$log2FoldChange
      r$lfcSEShrunk <- s$lfcSE
    }
    r
  })
  S4Vectors::SimpleList(stats::setNames(out, levels))
}

#' Sum cells into pseudobulk samples
#'
#' Sums the counts of the cells of each combination of the `by` columns (by default
#' perturbation and replicate) into one sample: the object `DESeq2::DESeqDataSet()`
#' takes. `rowData` and `metadata` are kept; `colData` holds the `by` columns,
#' `is_control` and `target` when the cells have them, and `n_cells`.
#'
#' @param x A `SingleCellExperiment` or `SummarizedExperiment` of cells (sparse or
#'   dense integer counts).
#' @param by `colData` columns defining the samples.
#' @return A `SummarizedExperiment` with a dense integer `counts` matrix, samples named
#'   `<perturbation>_r<replicate>`.
#' @examplesIf simpert_available()
#' sce <- simulate_screen(params = list(n_genes = 40L, n_perturbations = 2L), seed = 2)
#' se <- pseudobulk(sce)
#' colnames(se)
#' se$n_cells
#' @export
pseudobulk <- function(x, by = c("perturbation", "replicate")) {
  if (!methods::is(x, "SummarizedExperiment")) {
    stop("parameter 'x' must be a SingleCellExperiment or SummarizedExperiment; got ",
         class(x)[[1L]], call. = FALSE)
  }
  check_strings(by, "by")
  cd <- SummarizedExperiment::colData(x)
  miss <- setdiff(by, names(cd))
  if (length(miss)) {
    stop(sprintf("parameter 'by' must name colData columns; %s not found (columns: %s)",
                 paste(sQuote(miss), collapse = ", "), paste(names(cd), collapse = ", ")), call. = FALSE)
  }
  keys <- lapply(by, function(b) { v <- cd[[b]]; if (is.factor(v)) droplevels(v) else factor(v) })
  names(keys) <- by
  grp <- interaction(keys, drop = TRUE, lex.order = TRUE, sep = "_r")
  counts <- SummarizedExperiment::assay(x, if ("counts" %in% SummarizedExperiment::assayNames(x)) "counts" else 1L)
  ind <- Matrix::fac2sparse(grp)
  summed <- as.matrix(counts %*% Matrix::t(ind))
  if (all(summed == round(summed)) && max(c(0, summed)) < .Machine$integer.max) storage.mode(summed) <- "integer"
  first <- match(levels(grp), as.character(grp))
  new_cd <- S4Vectors::DataFrame(lapply(keys, function(k) k[first]), check.names = FALSE)
  for (col in intersect(c("is_control", "target"), setdiff(names(cd), by))) new_cd[[col]] <- cd[[col]][first]
  new_cd$n_cells <- as.integer(tabulate(grp, nbins = nlevels(grp)))
  rownames(new_cd) <- levels(grp)
  colnames(summed) <- levels(grp)
  SummarizedExperiment::SummarizedExperiment(
    assays = list(counts = summed), colData = new_cd,
    rowData = SummarizedExperiment::rowData(x), metadata = S4Vectors::metadata(x))
}
