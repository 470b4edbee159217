"""Paper 001: Li, Bradshaw & Sharma (ICML 2019), "Are generative classifiers more robust to adversarial attacks?".

The paper's entry only (experiments, declared tables, section order); each section is a module over one experiment:
``p001_fig2``, ``p001_mnist`` (and the table shapes ``p001_cifar`` repeats), ``p001_fig8`` and the appendices
``p001_a1`` / ``p001_a2`` / ``p001_a3``.
"""
from __future__ import annotations

from robustsweep.report.html import Section
from robustsweep.report.paper_registry import PaperContext, paper
from robustsweep.report.papers import p001_a1, p001_a2, p001_a3, p001_cifar, p001_fig2, p001_fig8, p001_mnist


@paper("001", name="deep-bayes", title="Li, Bradshaw & Sharma (ICML 2019): Are generative classifiers more robust "
                                       "to adversarial attacks?", source="001_c207276a6492ab58.txt",
       experiments=["p001_whitebox.yaml", "p001_blackbox.yaml", "p001_transfer_matrix.yaml",
                    "p001_adaptive.yaml", "p001_fig2.yaml", "p001_cifar_binary.yaml", "p001_fig8.yaml",
                    "p001_dimz.yaml", "p001_baselines.yaml"],
       tables=[*p001_mnist.SPECS, p001_fig2.SPEC, *p001_cifar.SPECS, *p001_fig8.SPECS, *p001_a2.SPECS,
               *p001_a3.SPECS, *p001_a1.SPECS],
       figures={"fig2_two_rings": p001_fig2.FIG2, "fig6_cw_examples": p001_mnist.FIG6, **p001_a3.A3_FIGURES},
       notes="CIFAR-binary (Fig. 4, Fig. 7, Table 2, Table 3's second half) comes from p001_cifar_binary.yaml; at ci "
             "a binary 3-vs-8 digits task stands in. Fig. 8 (VGG16 CONV9 / FC1 features) from p001_fig8.yaml.")
def build(ctx: PaperContext) -> list[Section]:
    return [
        *p001_fig2.build_fig2(ctx),
        *p001_mnist.build_mnist(ctx),
        *p001_cifar.build_cifar_binary(ctx.rows(p001_cifar.EXPERIMENT)),
        *p001_fig8.build_fig8(ctx),
        *p001_a1.build_a1(ctx),
        *p001_a2.build_a2(ctx),
        *p001_a3.build_a3(ctx),
    ]
