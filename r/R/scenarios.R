#' The named simulation scenarios
#'
#' @return A `data.frame` with one row per scenario: `name`, `kind`, `description`,
#'   `test_fraction` and `source` (the TOML file). See [scenario_params()] for a
#'   scenario's parameters.
#' @examplesIf simpert_available()
#' scenarios()[, c("name", "kind")]
#' @export
scenarios <- function() {
  out <- run_cli(c("scenarios", "--json"))
  df <- jsonlite::fromJSON(paste(out, collapse = "\n"), simplifyDataFrame = TRUE)
  as.data.frame(df, stringsAsFactors = FALSE)
}

#' The registered metrics
#'
#' The metrics [score_metrics()] and [calibrate_metric()] know by name.
#'
#' @return A `data.frame` with one row per metric: `name`, `higher_is_better`, `best`
#'   (the value of a perfect prediction, `NA` if none), `needs` (what the metric uses
#'   beyond the profiles, e.g. `"de"`, separated by commas), `source` (the benchmark it
#'   comes from) and `description`.
#' @examplesIf simpert_available()
#' m <- metrics()
#' head(m[, c("name", "higher_is_better", "source")])
#' @export
metrics <- function() {
  out <- run_cli(c("metrics", "--json"))
  rows <- jsonlite::fromJSON(paste(out, collapse = "\n"), simplifyVector = FALSE)
  field <- function(r, k, na) if (is.null(r[[k]])) na else r[[k]]
  data.frame(
    name = vapply(rows, field, character(1), k = "name", na = NA_character_),
    higher_is_better = vapply(rows, field, logical(1), k = "higher_is_better", na = NA),
    best = vapply(rows, function(r) as.numeric(field(r, "best", NA_real_)), numeric(1)),
    needs = vapply(rows, function(r) paste(unlist(r$needs), collapse = ","), character(1)),
    source = vapply(rows, field, character(1), k = "source", na = NA_character_),
    description = vapply(rows, field, character(1), k = "description", na = NA_character_),
    stringsAsFactors = FALSE
  )
}
