# File transport between R and the simpert command line: a directory holding
# counts.mtx (genes x observations), obs.csv, var.csv, truth CSV files and meta.json.

typed_columns <- function(df, types) {
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

#' Read a simpert MatrixMarket directory as a SummarizedExperiment
#'
#' @param path Directory written by `simpert simulate --format mtx` (or by
#'   [write_screen_dir()]).
#' @return A `SummarizedExperiment` with assay `counts` (genes x observations; a dense
#'   integer matrix for pseudobulk samples, a sparse `dgCMatrix` for cells), `colData`
#'   from `obs.csv` (`perturbation` a factor whose first level is the control),
#'   `rowData` from `var.csv` plus per-gene truth (`shared_log2fc`, `is_target`), and
#'   `metadata` holding `truth` (a list with the `log2fc` perturbation x gene matrix,
#'   `specific_log2fc`, `targets`, ...), `control`, `params`, `seed`, `kind`,
#'   `version` and the rest of the simulator's record (written back by
#'   [write_screen_dir()], so that a screen can return to the command line intact).
#' @examples
#' \dontrun{
#' se <- read_screen_dir("screen_dir")
#' }
#' @export
read_screen_dir <- function(path) {
  check_scalar(path, "path", "character")
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
    var <- data.frame(row.names = sprintf("g%05d", seq_len(nrow(counts)) - 1L))
  }
  obs <- typed_columns(obs, meta$obs_types)
  var <- typed_columns(var, meta$var_types)
  if (ncol(counts) != nrow(obs) || nrow(counts) != nrow(var)) {
    stop(sprintf("counts.mtx is %d x %d but obs.csv has %d rows and var.csv %d rows",
                 nrow(counts), ncol(counts), nrow(obs), nrow(var)), call. = FALSE)
  }
  dimnames(counts) <- list(rownames(var), rownames(obs))
  if (identical(meta$x, "dense")) {
    counts <- as.matrix(counts)
    if (all(counts == round(counts))) storage.mode(counts) <- "integer"
  }
  info <- meta$simpert
  if (is.null(info)) info <- list()
  truth <- read_truth(path, meta$truth_files)
  if ("shared_log2fc" %in% names(truth$per_gene) || length(truth$per_gene)) {
    for (k in names(truth$per_gene)) var[[k]] <- truth$per_gene[[k]][rownames(var)]
  }
  if (!is.null(truth$values$targets)) {
    var$is_target <- rownames(var) %in% truth$values$targets
  }
  if (is.null(info$control)) info$control <- if (!is.null(meta$control)) meta$control else "control"
  md <- c(list(truth = truth$values, truth_gene_columns = names(truth$per_gene)),
          info[setdiff(names(info), c("truth", "truth_gene_columns"))])
  md <- md[!vapply(md, is.null, logical(1))]
  SummarizedExperiment::SummarizedExperiment(
    assays = list(counts = counts),
    colData = S4Vectors::DataFrame(obs, check.names = FALSE),
    rowData = S4Vectors::DataFrame(var, check.names = FALSE),
    metadata = md
  )
}

read_truth <- function(path, files) {
  values <- list()
  per_gene <- list()
  if (is.null(files) || length(files) == 0L) return(list(values = values, per_gene = per_gene))
  cache <- list()
  get_table <- function(name) {
    if (is.null(cache[[name]])) {
      df <- utils::read.csv(file.path(path, name), check.names = FALSE,
                            stringsAsFactors = FALSE, na.strings = c("NA", "NaN"))
      cache[[name]] <<- df
    }
    cache[[name]]
  }
  for (key in names(files)) {
    spec <- files[[key]]
    if (identical(key, "_scalars")) {
      values <- c(values, spec)
      next
    }
    name <- spec[[1L]]
    layout <- spec[[2L]]
    if (identical(layout, "matrix")) {
      m <- as.matrix(utils::read.csv(file.path(path, name), header = FALSE))
      dimnames(m) <- NULL
      values[[key]] <- m
      next
    }
    df <- get_table(name)
    ids <- as.character(df[[1L]])
    if (layout %in% c("perturbation x gene", "gene x gene")) {
      m <- as.matrix(df[, -1L, drop = FALSE])
      storage.mode(m) <- "double"
      rownames(m) <- ids
      values[[key]] <- m
    } else if (identical(layout, "index")) {
      values[["perturbations"]] <- ids
    } else {
      v <- df[[key]]
      if (is.character(v)) v[is.na(v)] <- ""
      names(v) <- ids
      if (identical(name, "gene_truth.csv")) per_gene[[key]] <- v else values[[key]] <- v
    }
  }
  list(values = values, per_gene = per_gene)
}

column_types <- function(df) {
  out <- list()
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

#' Write a SummarizedExperiment as a simpert MatrixMarket directory
#'
#' The inverse of [read_screen_dir()]: writes the first assay (or `counts`) as
#' `counts.mtx`, `colData` as `obs.csv`, `rowData` as `var.csv`, the truth in
#' `metadata(se)$truth` as CSV files, and `meta.json`.
#'
#' @param se A `SummarizedExperiment` with integer counts (genes x observations);
#'   `colData` needs a `perturbation` column.
#' @param path Directory to create.
#' @param control The control label; default `metadata(se)$control` or `"control"`.
#' @return `path`, invisibly.
#' @examples
#' \dontrun{
#' write_screen_dir(se, tempfile())
#' }
#' @export
write_screen_dir <- function(se, path, control = NULL) {
  if (!methods::is(se, "SummarizedExperiment")) {
    stop("parameter 'se' must be a SummarizedExperiment; got ", class(se)[[1L]], call. = FALSE)
  }
  check_scalar(path, "path", "character")
  md <- S4Vectors::metadata(se)
  if (is.null(control)) control <- if (!is.null(md$control)) md$control else "control"
  check_scalar(control, "control", "character")
  obs <- as.data.frame(SummarizedExperiment::colData(se), optional = TRUE)
  if (!"perturbation" %in% names(obs)) {
    stop("parameter 'se' must have a 'perturbation' column in colData", call. = FALSE)
  }
  if (!control %in% as.character(obs$perturbation)) {
    stop(sprintf("parameter 'control' must be a level of colData(se)$perturbation; got %s",
                 sQuote(control)), call. = FALSE)
  }
  an <- SummarizedExperiment::assayNames(se)
  counts <- SummarizedExperiment::assay(se, if ("counts" %in% an) "counts" else 1L)
  if (any(is.na(counts)) || any(counts < 0) || any(counts != round(counts))) {
    stop("parameter 'se' must hold non-negative integer counts", call. = FALSE)
  }
  dir.create(path, recursive = TRUE, showWarnings = FALSE)
  Matrix::writeMM(methods::as(methods::as(counts, "CsparseMatrix"), "generalMatrix"),
                  file.path(path, "counts.mtx"))
  obs_names <- colnames(se)
  if (is.null(obs_names)) obs_names <- sprintf("s%05d", seq_len(ncol(se)) - 1L)
  genes <- rownames(se)
  if (is.null(genes)) genes <- sprintf("g%05d", seq_len(nrow(se)) - 1L)
  var <- as.data.frame(SummarizedExperiment::rowData(se), optional = TRUE)
  gene_cols <- intersect(md$truth_gene_columns, names(var))
  gene_truth <- var[, gene_cols, drop = FALSE]
  var <- var[, setdiff(names(var), c(gene_cols, "is_target")), drop = FALSE]
  if (is.factor(obs$perturbation)) {
    obs$perturbation <- stats::relevel(droplevels(obs$perturbation), ref = control)
  } else {
    obs$perturbation <- factor(obs$perturbation)
    obs$perturbation <- stats::relevel(obs$perturbation, ref = control)
  }
  utils::write.csv(cbind(data.frame(obs_name = obs_names, check.names = FALSE), obs),
                   file.path(path, "obs.csv"), row.names = FALSE)
  utils::write.csv(cbind(data.frame(gene = genes, check.names = FALSE), var),
                   file.path(path, "var.csv"), row.names = FALSE)
  truth_files <- write_truth(md$truth, path, genes, gene_truth = gene_truth)
  info <- md[setdiff(names(md), c("truth", "truth_gene_columns", "control"))]
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

write_truth <- function(truth, path, genes, gene_truth = NULL) {
  files <- list()
  empty <- structure(list(), names = character())
  perts <- truth$perturbations
  if (is.null(perts)) {
    for (v in truth) if (is.matrix(v) && !is.null(rownames(v)) && !identical(rownames(v), colnames(v))) {
      perts <- rownames(v)
      break
    }
  }
  scalars <- list()
  per_pert <- list()
  for (key in setdiff(names(truth), "perturbations")) {
    v <- truth[[key]]
    if (is.matrix(v) && is.null(rownames(v))) {
      utils::write.table(format(v, digits = 17, trim = TRUE), file.path(path, paste0(key, ".csv")),
                         sep = ",", row.names = FALSE, col.names = FALSE, quote = FALSE)
      files[[key]] <- c(paste0(key, ".csv"), "matrix")
    } else if (is.matrix(v)) {
      first <- if (identical(rownames(v), colnames(v))) "gene" else "perturbation"
      df <- cbind(stats::setNames(data.frame(rownames(v), check.names = FALSE), first),
                  as.data.frame(v, optional = TRUE))
      utils::write.csv(df, file.path(path, paste0(key, ".csv")), row.names = FALSE)
      files[[key]] <- c(paste0(key, ".csv"), if (first == "gene") "gene x gene" else "perturbation x gene")
    } else if (!is.null(perts) && !is.null(names(v)) && identical(sort(names(v)), sort(perts))) {
      per_pert[[key]] <- unname(v[perts])
    } else if (is.atomic(v)) {
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
  if (length(files) == 0L) return(empty)
  files
}
