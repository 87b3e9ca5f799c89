"""UsageRollup now lives in billing (billing 0005 took over its table and rows); this
drops only reporting's model state, never the table."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('reporting', '0001_initial'),
        ('billing', '0005_flexassignment_usagerollup'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='UsageRollup')],
            database_operations=[],
        ),
    ]
