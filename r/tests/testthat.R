library(testthat)
library(simpert)

test_check("simpert")
