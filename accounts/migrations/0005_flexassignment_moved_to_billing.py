"""FlexAssignment now lives in billing (billing 0005 took over its table and rows);
this drops only accounts' model state, never the table."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_notifications_and_alert_settings'),
        ('billing', '0005_flexassignment_usagerollup'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='FlexAssignment')],
            database_operations=[],
        ),
    ]
