from django.db import migrations, models


def backfill(apps, schema_editor):
    """Results stored before reward models could score came from log-likelihoods, or from the
    DPO implicit reward where the run's preference benchmark said `"score": "dpo"`."""
    EvaluationRun = apps.get_model("evaluation", "EvaluationRun")
    EvaluationResult = apps.get_model("evaluation", "EvaluationResult")
    for erun in EvaluationRun.objects.select_related("run").iterator():
        results = EvaluationResult.objects.filter(evaluation=erun, source="rlchf")
        results.update(scorer="loglik")
        benchmarks = (erun.run.config or {}).get("benchmarks") or []
        if any(isinstance(b, dict) and b.get("name") == "preference" and b.get("score") == "dpo" for b in benchmarks):
            results.filter(benchmark="preference").update(scorer="dpo")


class Migration(migrations.Migration):

    dependencies = [
        ('evaluation', '0002_evaluation_run_experiment'),
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='evaluationresult',
            name='scorer',
            field=models.CharField(blank=True, choices=[('loglik', 'Log-likelihood'), ('dpo', 'DPO implicit reward'), ('reward', 'Reward model')], help_text="What the model's scores were: log-likelihoods, the DPO implicit reward against a reference, or a reward model's rewards; empty for lm-eval's numbers.", max_length=20),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
