"""Flex assignments (from accounts) and the usage rollup (from reporting) now belong to
billing, the only code that charges by them and writes them. Only Django's model state
moves: the tables, their rows, indexes and constraints stay exactly as they are (each
model keeps its table through ``db_table``). accounts 0005 and reporting 0002 drop the
old state once this has run."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_notifications_and_alert_settings'),
        ('billing', '0004_job_state'),
        ('reporting', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='FlexAssignment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('all_products', models.BooleanField(default=True, help_text='Every Flex product, new ones included.')),
                        ('products', models.JSONField(blank=True, default=list, help_text='Product codes, when not all products.')),
                        ('assigned_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('removed_at', models.DateTimeField(blank=True, null=True)),
                        ('assigned_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('removed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='flex_assignments', to='accounts.team')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='flex_assignments', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'accounts_flexassignment',
                        'ordering': ['team', 'user', '-assigned_at'],
                        'indexes': [models.Index(fields=['team', 'user', 'assigned_at'], name='flexassignment_lookup')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('removed_at__isnull', True)), fields=('team', 'user'), name='flexassignment_one_current')],
                    },
                ),
                migrations.CreateModel(
                    name='UsageRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('product', models.SlugField(max_length=64)),
                        ('tokens', models.DecimalField(decimal_places=2, default=0, max_digits=14)),
                        ('cloud_credits', models.DecimalField(decimal_places=2, default=0, max_digits=14)),
                        ('charges', models.PositiveIntegerField(default=0)),
                        ('denials', models.PositiveIntegerField(default=0)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='usage_rollups', to='accounts.team')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'reporting_usagerollup',
                        'ordering': ['team', 'day', 'product'],
                        'indexes': [models.Index(fields=['team', 'day'], name='rollup_team_day')],
                        'constraints': [models.UniqueConstraint(fields=('team', 'day', 'product', 'user'), name='rollup_unique_group'), models.CheckConstraint(condition=models.Q(('tokens__gte', 0), ('cloud_credits__gte', 0)), name='rollup_not_negative')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
