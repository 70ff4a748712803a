"""Product pipelines: one module per product, each a function ``(run, workdir) -> ProductOutput``.

A pipeline gathers its inputs from the database and ``SHARED_DATA_DIR``, records them on the run
and times its stages with the toolkit of :mod:`products.lineage`, calls the product's pure
generator (:mod:`products.generators`) and returns the files, validation rows and summary
(:class:`products.lineage.ProductOutput`) that :func:`products.services.publish` stores.
:func:`products.services.execute_run` looks the pipeline up here by product key. Pipelines import
downward only: the lineage toolkit, the generators, methods, readers and models, never the services.
"""

from .et_fusion import et_fusion_pipeline
from .freeze_thaw import freeze_thaw_pipeline
from .sm_1km import sm_1km_pipeline
from .sm_mlda import sm_mlda_pipeline
from .tws_rec import tws_rec_pipeline

PIPELINES = {
    "et_fusion": et_fusion_pipeline,
    "sm_mlda": sm_mlda_pipeline,
    "freeze_thaw": freeze_thaw_pipeline,
    "sm_1km": sm_1km_pipeline,
    "tws_rec": tws_rec_pipeline,
}
