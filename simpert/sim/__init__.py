"""simpert.sim: simulators of perturbation screens with known truth.

- :func:`screen`: count-level CRISPR screen (negative binomial counts, guides, escapers,
  sparse specific effects, shared systematic response, replicates, pseudobulk; optionally a
  dose response, latent programs, batches, multiplets, double perturbations and contexts);
  :func:`context_view`: one context of a multi-context screen as a screen of its own.
- :func:`noise_only`: the PEREGGRN noise-only design, generalised.
- :func:`var_network`: linear network (VAR) simulator with hard interventions, on networks
  from :func:`erdos_renyi`, :func:`scale_free`, :func:`network_from_edges`,
  :func:`network_from_sif` or :func:`pathway_commons`.
- :func:`pseudobulk`, :func:`truth`, :func:`redraw` (technical duplicate),
  :func:`expected_counts` (the simulator's NB means).
- :func:`estimate_params` / :func:`fit_screen`: parameters shaped like a user's counts.
- :func:`plant`: semi-synthetic screens, known effects planted into a user's control cells
  by binomial thinning; :func:`compare`: panels comparing a simulation to real data.
- Out of core: ``screen(..., out="screen.zarr")`` draws the cells in chunks on Dask and
  writes them to Zarr; :func:`pseudobulk_zarr` sums a stored screen by chunks.
"""

from ._chunked import profiles_zarr, pseudobulk_zarr
from ._contexts import context_view
from ._estimate import FitSummary, ScreenFit, estimate_params, fit_screen
from ._network import Network, erdos_renyi, network_from_edges, network_from_sif, pathway_commons, scale_free
from ._noise_only import noise_only
from ._params import NetworkParams, NoiseOnlyParams, ScreenParams
from ._plant import plant
from ._pseudobulk import pseudobulk
from ._redraw import expected_counts, redraw
from ._screen import gene_names, screen
from ._truth import Truth, truth
from ._var import iterate, spectral_radius, steady_state, var_network
from ._compare import Comparison, compare

__all__ = [
    "ScreenParams",
    "NoiseOnlyParams",
    "NetworkParams",
    "screen",
    "noise_only",
    "pseudobulk",
    "pseudobulk_zarr",
    "profiles_zarr",
    "truth",
    "Truth",
    "redraw",
    "expected_counts",
    "gene_names",
    "context_view",
    "var_network",
    "Network",
    "erdos_renyi",
    "scale_free",
    "network_from_edges",
    "network_from_sif",
    "pathway_commons",
    "steady_state",
    "iterate",
    "spectral_radius",
    "estimate_params",
    "fit_screen",
    "ScreenFit",
    "FitSummary",
    "plant",
    "compare",
    "Comparison",
]
