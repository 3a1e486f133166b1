# File transport between R and the simpert command line: a directory holding
# counts.mtx (genes x observations), obs.csv, var.csv, truth CSV files and meta.json.
#
# The files keep the command line's conventions (0-based replicate and target indices,
# "" for a missing target, perturbation x gene truth matrices); the objects in R follow
# Bioconductor's (1-based factors, NA, gene x perturbation matrices in rowData). The
# conversion happens here, in both directions, and nowhere else.

empty_object <- function() structure(list(), names = character())

typed_columns <- function(df, types) {
  if (!is.list(types) || is.null(names(types))) return(df)
  for (col in intersect(names(types), names(df))) {
    spec <- types[[col]]
    kind <- spec$type
    if (identical(kind, "category")) {
      values <- as.character(df[[col]])
      values[is.na(values)] <- ""
      levels <- as.character(unlist(spec$categories))
      df[[col]] <- factor(values, levels = union(levels, sort(unique(values))))
    } else if (identical(kind, "bool")) {
      df[[col]] <- toupper(as.character(df[[col]])) %in% c("TRUE", "1")
    } else if (identical(kind, "int")) {
      df[[col]] <- as.integer(df[[col]])
    } else if (identical(kind, "float")) {
      df[[col]] <- as.numeric(df[[col]])
    } else {
      values <- as.character(df[[col]])
      values[is.na(values)] <- ""
      df[[col]] <- values
    }
  }
  df
}

# Python's 0-based replicate -> a factor 1, 2, ...; "" targets -> NA.
obs_to_r <- function(obs) {
  if ("replicate" %in% names(obs) && is.numeric(obs$replicate)) {
    rep1 <- as.integer(obs$replicate) + 1L
    obs$replicate <- factor(rep1, levels = sort(unique(rep1)))
  }
  for (col in intersect(c("target", "targets"), names(obs))) {
    if (is.character(obs[[col]])) obs[[col]][!nzchar(obs[[col]])] <- NA_character_
  }
  obs
}

# Pseudobulk sample names "<perturbation>_r<0-based replicate>" -> 1-based.
sample_names_to_r <- function(obs) {
  if (!all(c("perturbation", "replicate") %in% names(obs))) return(rownames(obs))
  old <- paste0(as.character(obs$perturbation), "_r", as.integer(as.character(obs$replicate)) - 1L)
  if (!identical(old, rownames(obs))) return(rownames(obs))
  paste0(as.character(obs$perturbation), "_r", as.character(obs$replicate))
}

#' Read a simpert MatrixMarket directory
#'
#' Reads what `simpert simulate --format mtx` (or [write_screen_dir()]) wrote, in
#' Bioconductor's conventions: cells as a `SingleCellExperiment` with sparse counts,
#' pseudobulk samples as a `SummarizedExperiment` with a dense integer matrix (ready for
#' `DESeq2::DESeqDataSet()`).
#'
#' `colData`: `perturbation` (a factor whose first level is the control), `is_control`,
#' `target` (`NA` for controls), `guide`, `replicate` (a factor with levels `1`, `2`,
#' ...), and the simulator's per-cell truth (`size_factor`, `knockdown`, `escaped`) or
#' per-sample cell counts (`n_cells`).
#' `rowData`: the simulator's per-gene truth (`base_mean`, `dispersion`, ...),
#' `shared_log2fc`, `is_target` (whether some perturbation targets the gene) and the true
#' log2 fold changes as gene x perturbation matrices: `true_log2fc` (everything the
#' perturbation changes) and `true_specific_log2fc` (its own effects, without the shared
#' response).
#' `metadata`: `truth` (a list: `perturbations`, a `DataFrame` with one row per
#' perturbation: `target`, `target_index` (1-based row of the target gene) and cell
#' counts; `targets`, a named character vector; `replicate_log2fc`, gene x replicate;
#' `guides`, guide efficiencies; `network`, gene x gene, for network screens), `control`,
#' `params`, `seed`, `kind` and `version`.
#'
#' @param path Directory holding `counts.mtx` and `obs.csv`.
#' @param class `"auto"` (`SingleCellExperiment` for sparse counts, i.e. cells;
#'   `SummarizedExperiment` for dense counts, i.e. pseudobulk samples), or one of the two.
#' @return A `SingleCellExperiment` or `SummarizedExperiment` (see Details).
#' @examplesIf simpert_available()
#' dir <- tempfile()
#' write_screen_dir(simulate_screen(params = list(n_genes = 30L, n_perturbations = 2L),
#'                                  n_replicates = 2L, pseudobulk = TRUE), dir)
#' se <- read_screen_dir(dir)
#' se
#' head(SummarizedExperiment::rowData(se)$true_log2fc)
#' unlink(dir, recursive = TRUE)
#' @export
read_screen_dir <- function(path, class = c("auto", "SingleCellExperiment", "SummarizedExperiment")) {
  check_scalar(path, "path", "character")
  class <- match.arg(class)
  for (f in c("counts.mtx", "obs.csv")) {
    if (!file.exists(file.path(path, f))) {
      stop(sprintf("parameter 'path' must be a simpert MatrixMarket directory; %s is missing",
                   sQuote(file.path(path, f))), call. = FALSE)
    }
  }
  meta <- list()
  if (file.exists(file.path(path, "meta.json"))) {
    meta <- jsonlite::fromJSON(file.path(path, "meta.json"), simplifyVector = TRUE,
                               simplifyDataFrame = FALSE, simplifyMatrix = FALSE)
  }
  counts <- methods::as(Matrix::readMM(file.path(path, "counts.mtx")), "CsparseMatrix")
  obs <- utils::read.csv(file.path(path, "obs.csv"), check.names = FALSE,
                         stringsAsFactors = FALSE, na.strings = c("NA", "NaN"))
  rownames(obs) <- as.character(obs[[1L]])
  obs <- obs[, -1L, drop = FALSE]
  if (file.exists(file.path(path, "var.csv"))) {
    var <- utils::read.csv(file.path(path, "var.csv"), check.names = FALSE,
                           stringsAsFactors = FALSE, na.strings = c("NA", "NaN"))
    rownames(var) <- as.character(var[[1L]])
    var <- var[, -1L, drop = FALSE]
  } else {
    var <- data.frame(row.names = sprintf("gene%d", seq_len(nrow(counts))))
  }
  obs <- obs_to_r(typed_columns(obs, meta$obs_types))
  var <- typed_columns(var, meta$var_types)
  if (ncol(counts) != nrow(obs) || nrow(counts) != nrow(var)) {
    stop(sprintf("counts.mtx is %d x %d but obs.csv has %d rows and var.csv %d rows",
                 nrow(counts), ncol(counts), nrow(obs), nrow(var)), call. = FALSE)
  }
  rownames(obs) <- sample_names_to_r(obs)
  dimnames(counts) <- list(rownames(var), rownames(obs))
  dense <- identical(meta$x, "dense")
  if (identical(class, "auto")) class <- if (dense) "SummarizedExperiment" else "SingleCellExperiment"
  if (dense || identical(class, "SummarizedExperiment")) {
    counts <- as.matrix(counts)
    if (all(counts == round(counts)) && max(c(0, counts)) < .Machine$integer.max) {
      storage.mode(counts) <- "integer"
    }
  }
  info <- meta$simpert
  if (is.null(info)) info <- list()
  truth <- read_truth(path, meta$truth_files, genes = rownames(var))
  rd <- S4Vectors::DataFrame(var, check.names = FALSE)
  for (k in names(truth$per_gene)) rd[[k]] <- unname(truth$per_gene[[k]][rownames(var)])
  if (!is.null(truth$values$targets)) {
    rd$is_target <- rownames(var) %in% truth$values$targets
  }
  for (k in names(truth$gene_matrices)) {
    rd[[paste0("true_", k)]] <- truth$gene_matrices[[k]]
  }
  if (is.null(info$control)) info$control <- if (!is.null(meta$control)) meta$control else "control"
  # per-cell bookkeeping of the pseudobulk step describes cells the object no longer holds
  info$design <- NULL
  md <- c(list(truth = truth$values), info[setdiff(names(info), "truth")])
  md <- md[!vapply(md, is.null, logical(1))]
  cd <- S4Vectors::DataFrame(obs, check.names = FALSE)
  if (identical(class, "SingleCellExperiment")) {
    SingleCellExperiment::SingleCellExperiment(assays = list(counts = counts), colData = cd,
                                               rowData = rd, metadata = md)
  } else {
    SummarizedExperiment::SummarizedExperiment(assays = list(counts = counts), colData = cd,
                                               rowData = rd, metadata = md)
  }
}

read_truth <- function(path, files, genes) {
  values <- list()
  per_gene <- list()
  gene_matrices <- list()
  if (!is.list(files) || length(files) == 0L) {
    return(list(values = values, per_gene = per_gene, gene_matrices = gene_matrices))
  }
  cache <- list()
  get_table <- function(name) {
    if (is.null(cache[[name]])) {
      cache[[name]] <<- utils::read.csv(file.path(path, name), check.names = FALSE,
                                        stringsAsFactors = FALSE, na.strings = c("NA", "NaN"))
    }
    cache[[name]]
  }
  pert_cols <- list()
  perts <- NULL
  for (key in names(files)) {
    spec <- files[[key]]
    if (identical(key, "_scalars")) {
      values <- c(values, spec)
      next
    }
    name <- spec[[1L]]
    layout <- spec[[2L]]
    if (identical(key, "replicate_log2fc")) {
      # replicate x gene in the files (whatever the layout label): gene x replicate here
      m <- if (identical(layout, "matrix")) {
        as.matrix(utils::read.csv(file.path(path, name), header = FALSE))
      } else {
        as.matrix(get_table(name)[, -1L, drop = FALSE])
      }
      storage.mode(m) <- "double"
      m <- t(m)
      dimnames(m) <- list(if (nrow(m) == length(genes)) genes, as.character(seq_len(ncol(m))))
      values[[key]] <- m
      next
    }
    if (identical(layout, "matrix")) {
      m <- as.matrix(utils::read.csv(file.path(path, name), header = FALSE))
      dimnames(m) <- NULL
      values[[key]] <- m
      next
    }
    df <- get_table(name)
    ids <- as.character(df[[1L]])
    if (identical(layout, "perturbation x gene")) {
      m <- as.matrix(df[, -1L, drop = FALSE])
      storage.mode(m) <- "double"
      rownames(m) <- ids
      gene_matrices[[key]] <- t(m)[genes, , drop = FALSE]
    } else if (identical(layout, "gene x gene")) {
      m <- as.matrix(df[, -1L, drop = FALSE])
      storage.mode(m) <- "double"
      rownames(m) <- ids
      values[[key]] <- m
    } else if (identical(layout, "index")) {
      perts <- ids
    } else {
      v <- df[[key]]
      names(v) <- ids
      if (identical(name, "gene_truth.csv")) per_gene[[key]] <- v else pert_cols[[key]] <- v
    }
  }
  if (!is.null(perts) || length(pert_cols)) {
    if (is.null(perts)) perts <- names(pert_cols[[1L]])
    tab <- S4Vectors::DataFrame(row.names = perts)
    for (key in names(pert_cols)) {
      v <- unname(pert_cols[[key]][perts])
      if (identical(key, "targets")) {
        v <- as.character(v)
        v[is.na(v) | !nzchar(v)] <- NA_character_
        tab$target <- v
        values$targets <- stats::setNames(v, perts)
      } else if (identical(key, "target_index")) {
        v <- as.integer(v)
        tab$target_index <- ifelse(is.na(v) | v < 0L, NA_integer_, v + 1L)
      } else {
        tab[[key]] <- v
      }
    }
    values$perturbations <- tab
  }
  if (is.character(values$guides) && is.numeric(values$guide_efficiency) &&
      length(values$guides) == length(values$guide_efficiency)) {
    values$guides <- data.frame(guide = values$guides, efficiency = values$guide_efficiency,
                                stringsAsFactors = FALSE)
    values$guide_efficiency <- NULL
  }
  list(values = values, per_gene = per_gene, gene_matrices = gene_matrices)
}

column_types <- function(df) {
  out <- empty_object()
  for (col in names(df)) {
    x <- df[[col]]
    out[[col]] <- if (is.factor(x)) {
      list(type = "category", categories = I(levels(x)))
    } else if (is.logical(x)) {
      list(type = "bool")
    } else if (is.integer(x)) {
      list(type = "int")
    } else if (is.numeric(x)) {
      list(type = "float")
    } else {
      list(type = "str")
    }
  }
  out
}

# A colData/rowData as a plain data.frame of the column kinds the files carry.
flat_columns <- function(df) {
  df_rows <- df
  df <- as.list(df)
  keep <- list()
  for (col in names(df)) {
    x <- df[[col]]
    if (!is.null(dim(x)) || is.list(x) || methods::is(x, "DataFrame")) next
    if (!(is.factor(x) || is.logical(x) || is.numeric(x) || is.character(x))) x <- as.character(x)
    keep[[col]] <- x
  }
  out <- data.frame(row.names = seq_len(nrow(df_rows)))
  for (col in names(keep)) out[[col]] <- keep[[col]]
  out
}

# R's 1-based replicate factor -> the files' 0-based integers (other labels stay a category).
obs_to_files <- function(obs) {
  if ("replicate" %in% names(obs)) {
    r <- obs$replicate
    lab <- if (is.factor(r)) as.character(r) else r
    num <- suppressWarnings(as.numeric(lab))
    if (!anyNA(num) && all(num >= 1) && all(num == round(num))) {
      obs$replicate <- as.integer(num) - 1L
    } else if (!is.factor(r)) {
      obs$replicate <- factor(r)
    }
  }
  for (col in intersect("target", names(obs))) {
    v <- as.character(obs[[col]])
    v[is.na(v)] <- ""
    obs[[col]] <- v
  }
  obs
}

#' Write a SummarizedExperiment as a simpert MatrixMarket directory
#'
#' The inverse of [read_screen_dir()]: writes the `counts` assay (or the first) as
#' `counts.mtx`, `colData` as `obs.csv`, `rowData` as `var.csv`, the truth (the
#' `true_*` matrices of `rowData` and `metadata(se)$truth`) as CSV files, and
#' `meta.json`, converting back to the command line's conventions (0-based replicate
#' and target indices, `""` for a missing target, perturbation x gene matrices).
#'
#' Any `SummarizedExperiment` (including a `DESeqDataSet` or `SingleCellExperiment`)
#' with non-negative integer counts works, whatever its `rowData` and `colData` hold;
#' `group` names the `colData` column whose levels are the perturbations.
#'
#' @param se A `SummarizedExperiment` with integer counts (genes x observations).
#' @param path Directory to create.
#' @param control The control level of `group`; default `metadata(se)$control`, else
#'   `"control"` when it is a level, else the first level.
#' @param group The `colData` column holding the perturbation of each observation;
#'   default `"perturbation"` (for a `DESeqDataSet` without it: the last variable of
#'   its design).
#' @return `path`, invisibly.
#' @examples
#' counts <- matrix(rpois(60, 10), nrow = 10,
#'                  dimnames = list(paste0("gene", 1:10), paste0("s", 1:6)))
#' se <- SummarizedExperiment::SummarizedExperiment(
#'   assays = list(counts = counts),
#'   colData = S4Vectors::DataFrame(condition = factor(rep(c("A", "B"), each = 3))))
#' dir <- write_screen_dir(se, tempfile(), group = "condition")
#' list.files(dir)
#' unlink(dir, recursive = TRUE)
#' @export
write_screen_dir <- function(se, path, control = NULL, group = NULL) {
  write_screen(se, path, control = control, group = group)
}

# The writer; `strict = FALSE` accepts a screen without control rows (predictions),
# `integer = FALSE` values that are not counts (log-normalised profiles).
write_screen <- function(se, path, control = NULL, group = NULL, strict = TRUE, integer = TRUE) {
  if (!methods::is(se, "SummarizedExperiment")) {
    stop("parameter 'se' must be a SummarizedExperiment; got ", class(se)[[1L]], call. = FALSE)
  }
  check_scalar(path, "path", "character")
  prep <- screen_design(se, group = group, control = control, strict = strict)
  control <- prep$control
  md <- S4Vectors::metadata(se)
  obs <- flat_columns(SummarizedExperiment::colData(se))
  obs$perturbation <- prep$perturbation
  if (!is.null(prep$group) && !identical(prep$group, "perturbation")) obs[[prep$group]] <- NULL
  an <- SummarizedExperiment::assayNames(se)
  if (length(an) == 0L && length(SummarizedExperiment::assays(se)) == 0L) {
    stop("parameter 'se' must hold a count assay; it has none", call. = FALSE)
  }
  counts <- SummarizedExperiment::assay(se, if ("counts" %in% an) "counts" else 1L, withDimnames = FALSE)
  if (!is.matrix(counts) && !methods::is(counts, "Matrix")) counts <- as.matrix(counts)
  vals <- if (methods::is(counts, "sparseMatrix")) methods::as(counts, "CsparseMatrix")@x else counts
  if (!is.numeric(vals) && !is.logical(vals) || anyNA(vals) || any(vals < 0) ||
      integer && any(vals != round(vals))) {
    stop(sprintf("parameter 'se' must hold non-negative %s in its 'counts' assay",
                 if (integer) "integer counts" else "finite values"), call. = FALSE)
  }
  dir.create(path, recursive = TRUE, showWarnings = FALSE)
  Matrix::writeMM(methods::as(methods::as(methods::as(counts, "CsparseMatrix"), "generalMatrix"),
                              "dMatrix"),
                  file.path(path, "counts.mtx"))
  obs_names <- colnames(se)
  if (is.null(obs_names)) obs_names <- sprintf("s%d", seq_len(ncol(se)))
  genes <- rownames(se)
  if (is.null(genes)) genes <- sprintf("gene%d", seq_len(nrow(se)))
  rd <- SummarizedExperiment::rowData(se)
  true_mats <- list()
  for (col in names(rd)) {
    if (startsWith(col, "true_") && is.matrix(rd[[col]]) && is.numeric(rd[[col]])) {
      true_mats[[substring(col, 6L)]] <- rd[[col]]
    }
  }
  var <- flat_columns(rd)
  per_gene_keys <- intersect(c("shared_log2fc", "systematic_direction"), names(var))
  gene_truth <- var[, per_gene_keys, drop = FALSE]
  var <- var[, setdiff(names(var), c(per_gene_keys, "is_target")), drop = FALSE]
  obs <- obs_to_files(obs)
  utils::write.csv(cbind(data.frame(obs_name = obs_names, check.names = FALSE), obs),
                   file.path(path, "obs.csv"), row.names = FALSE)
  utils::write.csv(cbind(data.frame(gene = genes, check.names = FALSE), var),
                   file.path(path, "var.csv"), row.names = FALSE)
  truth_files <- write_truth(md$truth, true_mats, path, genes, gene_truth = gene_truth)
  info <- md[setdiff(names(md), c("truth", "control", "design"))]
  # keep what JSON can carry (the simulator's record: kind, params, seed, count_model, ...)
  info <- info[vapply(info, function(x) {
    !inherits(tryCatch(jsonlite::toJSON(x, auto_unbox = TRUE, null = "null"),
                       error = function(e) e), "error")
  }, logical(1))]
  info$control <- control
  meta <- list(
    format = "simpert-mtx", format_version = 1L, orientation = "genes x observations",
    shape = c(nrow(se), ncol(se)), x = if (methods::is(counts, "sparseMatrix")) "sparse" else "dense",
    obs_types = column_types(obs), var_types = column_types(var),
    truth_files = truth_files, simpert = info
  )
  writeLines(jsonlite::toJSON(meta, auto_unbox = TRUE, null = "null", digits = NA, pretty = TRUE),
             file.path(path, "meta.json"))
  invisible(path)
}

# Row and column names where an object has none (the files and the tables need them).
with_names <- function(se) {
  if (is.null(rownames(se))) rownames(se) <- sprintf("gene%d", seq_len(nrow(se)))
  if (is.null(colnames(se))) colnames(se) <- sprintf("s%d", seq_len(ncol(se)))
  se
}

# The perturbation factor of a screen (control first) from `group`, and the control level.
screen_design <- function(se, group = NULL, control = NULL, strict = TRUE) {
  cd <- SummarizedExperiment::colData(se)
  if (is.null(group)) {
    if ("perturbation" %in% names(cd)) {
      group <- "perturbation"
    } else if (methods::is(se, "DESeqDataSet")) {
      vars <- all.vars(DESeq2::design(se))
      group <- vars[length(vars)]
    } else {
      stop("parameter 'group' must name the colData column holding each sample's ",
           "perturbation (condition); colData(se) has no 'perturbation' column and holds: ",
           if (ncol(cd)) paste(names(cd), collapse = ", ") else "nothing", call. = FALSE)
    }
  }
  check_scalar(group, "group", "character")
  if (!group %in% names(cd)) {
    stop(sprintf("parameter 'group' must name a colData column; got %s (columns: %s)", sQuote(group),
                 if (ncol(cd)) paste(names(cd), collapse = ", ") else "none"), call. = FALSE)
  }
  g <- cd[[group]]
  if (!(is.factor(g) || is.character(g) || is.logical(g) || is.numeric(g)) || anyNA(g)) {
    stop(sprintf("parameter 'group': colData column %s must be a factor or character vector without NA",
                 sQuote(group)), call. = FALSE)
  }
  g <- if (is.factor(g)) droplevels(g) else factor(g)
  md <- S4Vectors::metadata(se)
  if (is.null(control)) {
    control <- if (!is.null(md$control) && md$control %in% levels(g)) {
      md$control
    } else if ("control" %in% levels(g)) {
      "control"
    } else {
      levels(g)[[1L]]
    }
  }
  check_scalar(control, "control", "character")
  if (!strict) {
    if (control %in% levels(g)) g <- stats::relevel(g, ref = control)
    return(list(group = group, control = control, perturbation = g))
  }
  if (!control %in% levels(g)) {
    stop(sprintf("parameter 'control' must be a level of colData(se)$%s (%s); got %s", group,
                 paste(utils::head(levels(g), 10L), collapse = ", "), sQuote(control)), call. = FALSE)
  }
  if (nlevels(g) < 2L) {
    stop(sprintf("colData(se)$%s must have at least two levels (a control and a perturbation); it has %s",
                 group, paste(levels(g), collapse = ", ")), call. = FALSE)
  }
  list(group = group, control = control, perturbation = stats::relevel(g, ref = control))
}

write_truth <- function(truth, true_mats, path, genes, gene_truth = NULL) {
  files <- empty_object()
  scalars <- list()
  per_pert <- list()
  perts <- NULL
  tab <- truth$perturbations
  if (!is.null(tab)) perts <- rownames(tab)
  for (key in names(true_mats)) {
    m <- true_mats[[key]]
    if (is.null(colnames(m))) next
    if (is.null(perts)) perts <- colnames(m)
    df <- cbind(data.frame(perturbation = colnames(m), check.names = FALSE),
                as.data.frame(t(m), optional = TRUE))
    names(df)[-1L] <- genes
    utils::write.csv(df, file.path(path, paste0(key, ".csv")), row.names = FALSE)
    files[[key]] <- c(paste0(key, ".csv"), "perturbation x gene")
  }
  if (!is.null(tab)) {
    for (key in names(tab)) {
      v <- tab[[key]]
      if (identical(key, "target")) {
        v <- as.character(v)
        v[is.na(v)] <- ""
        per_pert$targets <- v
      } else if (identical(key, "target_index")) {
        per_pert$target_index <- ifelse(is.na(v), -1L, as.integer(v) - 1L)
      } else if (is.atomic(v) && is.null(dim(v))) {
        per_pert[[key]] <- v
      }
    }
  } else if (!is.null(truth$targets) && !is.null(perts)) {
    v <- as.character(truth$targets[perts])
    v[is.na(v)] <- ""
    per_pert$targets <- v
  }
  for (key in setdiff(names(truth), c("perturbations", "targets"))) {
    v <- truth[[key]]
    if (identical(key, "replicate_log2fc") && is.matrix(v)) {
      v <- t(v)
      utils::write.table(format(v, digits = 17, trim = TRUE), file.path(path, paste0(key, ".csv")),
                         sep = ",", row.names = FALSE, col.names = FALSE, quote = FALSE)
      files[[key]] <- c(paste0(key, ".csv"), "matrix")
    } else if (identical(key, "guides") && is.data.frame(v)) {
      scalars$guides <- I(as.character(v$guide))
      scalars$guide_efficiency <- I(as.numeric(v$efficiency))
    } else if (is.matrix(v) && !is.null(rownames(v)) && identical(rownames(v), colnames(v))) {
      df <- cbind(data.frame(gene = rownames(v), check.names = FALSE), as.data.frame(v, optional = TRUE))
      utils::write.csv(df, file.path(path, paste0(key, ".csv")), row.names = FALSE)
      files[[key]] <- c(paste0(key, ".csv"), "gene x gene")
    } else if (is.matrix(v)) {
      utils::write.table(format(v, digits = 17, trim = TRUE), file.path(path, paste0(key, ".csv")),
                         sep = ",", row.names = FALSE, col.names = FALSE, quote = FALSE)
      files[[key]] <- c(paste0(key, ".csv"), "matrix")
    } else if (is.atomic(v) && !is.null(v)) {
      scalars[[key]] <- if (length(v) == 1L) v else I(unname(v))
    }
  }
  if (!is.null(perts)) {
    df <- data.frame(perturbation = perts, check.names = FALSE)
    for (key in names(per_pert)) {
      df[[key]] <- per_pert[[key]]
      files[[key]] <- c("perturbations.csv", "column")
    }
    utils::write.csv(df, file.path(path, "perturbations.csv"), row.names = FALSE)
    files$perturbations <- c("perturbations.csv", "index")
  }
  if (!is.null(gene_truth) && ncol(gene_truth) > 0L) {
    utils::write.csv(cbind(data.frame(gene = genes, check.names = FALSE), gene_truth),
                     file.path(path, "gene_truth.csv"), row.names = FALSE)
    for (key in names(gene_truth)) files[[key]] <- c("gene_truth.csv", "column")
  }
  if (length(scalars)) files[["_scalars"]] <- scalars
  files
}
