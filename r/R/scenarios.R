#' The named simulation scenarios
#'
#' @return A `data.frame` with one row per scenario: `name`, `kind`, `description`,
#'   `test_fraction` and `source` (the TOML file).
#' @examples
#' \dontrun{
#' scenarios()
#' }
#' @export
scenarios <- function() {
  out <- run_cli(c("scenarios", "--json"))
  df <- jsonlite::fromJSON(paste(out, collapse = "\n"), simplifyDataFrame = TRUE)
  as.data.frame(df, stringsAsFactors = FALSE)
}
