"""Engine-agnostic infrastructure, below both engines (:mod:`simulate`, :mod:`distill`).

Configs and ``key=value`` overrides (:mod:`infra.config`), run directories (:mod:`infra.rundir`),
safetensors checkpoint files (:mod:`infra.checkpoints`), seeding with one named set of stream salts
(:mod:`infra.seeding`), devices (:mod:`infra.device`), supervision schedules and strategies
(:mod:`infra.schedule`), the choice of the first teacher checkpoint (:mod:`infra.first_checkpoint`),
metrics-log summaries (:mod:`infra.logs`), the teacher-then-students compare layout and its summary
row (:mod:`infra.compare`), the one outer loop of every training program (:mod:`infra.runloop`),
the result store (:mod:`infra.store`) and the package version
(:mod:`infra.version`). Imports ``theory`` only (no engine, no experiment, no command line).
"""
