"""One module per seed paper (``p000.py`` … ``p004.py``): its experiment files, the tables and figures it
regenerates, and the function that builds them from the experiments' rows (the registry: ``report/paper_registry.py``).

A paper module::

    @paper("001", name="deep-bayes", title="Li, Bradshaw & Sharma (ICML 2019) ...",
           source="001_c207276a6492ab58.txt", experiments=["p001_fig3.yaml"], tables=[FIG3])  # TableSpecs
    def build(ctx: PaperContext) -> list[Section]:
        rows = ctx.rows("deep-bayes-fig3")         # the experiment's rows by its spec `name`
        return [Section("Fig. 3", tables=[FIG3.build(rows)], figures=[...], checks=run_claims(CLAIMS, rows))]

:func:`robustsweep.report.paper.build_paper_report` calls the builder, compares every table with
``experiments/reference/<id>.yaml`` and writes the tables (md/csv/tex), the figures and ``report.md`` / ``.html``.
"""
from robustsweep.report.paper_registry import PAPERS, Paper, PaperContext, get_paper, load_papers, paper

__all__ = ["PAPERS", "Paper", "PaperContext", "get_paper", "load_papers", "paper"]
