"""training.recipes.common.last_checkpoint: a run resumes from its newest complete checkpoint."""
from __future__ import annotations

import types

from training.recipes import common


def test_the_newest_complete_checkpoint_is_chosen_and_one_killed_while_saving_is_passed_over(tmp_path):
    for step, complete in ((2, True), (4, False), (10, True), (12, False)):
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        if complete:
            (path / "trainer_state.json").write_text("{}")
    args = types.SimpleNamespace(resume_from_checkpoint=None, output_dir=str(tmp_path))
    assert common.last_checkpoint(args) == str(tmp_path / "checkpoint-10")  # 10 > 4 (not "10" < "4"), 12 incomplete
    (tmp_path / "checkpoint-10" / "trainer_state.json").unlink()
    assert common.last_checkpoint(args) == str(tmp_path / "checkpoint-2")
    assert common.last_checkpoint(types.SimpleNamespace(resume_from_checkpoint=None,
                                                        output_dir=str(tmp_path / "none"))) is None
