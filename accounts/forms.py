from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.core.exceptions import ValidationError

from accounts.models import TIME_ZONE_CHOICES, AlertSettings, NotificationKind, Role, Team, ThresholdUnit

ASSIGNABLE_ROLES = [(value, label) for value, label in Role.choices if value != Role.PRIMARY_ADMIN]
MAX_CSV_BYTES = 1024 * 1024


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on its field when the form has it."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=ASSIGNABLE_ROLES, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ASSIGNABLE_ROLES)


class MemberImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns: First name, Last name, Email, and optionally Role (Member, Report viewer, "
        "Secondary admin). One person per row; the first row names the columns.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            raise ValidationError("The file is larger than 1 MB. Split it into smaller files.")
        return upload.read()


class ConfirmImportForm(forms.Form):
    upload_id = forms.CharField(widget=forms.HiddenInput)


class TeamSettingsForm(forms.Form):
    name = forms.CharField(label="Team name", max_length=200)
    time_zone = forms.ChoiceField(
        choices=TIME_ZONE_CHOICES,
        help_text="Usage reports count days in this time zone.",
    )
    report_names = forms.BooleanField(
        label="Display names and e-mail addresses in reports",
        required=False,
        help_text="Off: every report, drill-down and export shows a stable pseudonym per person (User 17) instead.",
    )

    @classmethod
    def for_team(cls, team: Team, data: dict | None = None) -> "TeamSettingsForm":
        return cls(data, initial={"name": team.name, "time_zone": team.time_zone, "report_names": team.report_names})


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=100,
        help_text="What the key is for, for example the program or script that will use it.",
    )


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)


class AcceptInvitationForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return data


class AlertSettingsForm(forms.Form):
    expiry_reminders = forms.BooleanField(
        label="Expiring tokens",
        required=False,
        help_text="An e-mail and a notice 90, 30 and 7 days before a pack's unused tokens expire.",
    )
    expiry_recipients = forms.TypedMultipleChoiceField(
        label="Who is told about expiring tokens", coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    low_balance = forms.BooleanField(
        label="Low balance",
        required=False,
        help_text="An e-mail and a notice when the available tokens fall below the threshold; "
        "again only after the balance has recovered.",
    )
    low_balance_value = forms.IntegerField(label="Threshold", min_value=1)
    low_balance_unit = forms.ChoiceField(
        label="Threshold unit", choices=ThresholdUnit.choices, widget=forms.RadioSelect
    )
    low_balance_recipients = forms.TypedMultipleChoiceField(
        label="Who is told about a low balance", coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    @classmethod
    def for_team(
        cls, *, alert_settings: AlertSettings, admins: list, opt_outs: set, data: dict | None = None
    ) -> "AlertSettingsForm":
        initial = {
            "expiry_reminders": alert_settings.expiry_reminders,
            "low_balance": alert_settings.low_balance,
            "low_balance_unit": alert_settings.low_balance_unit,
            "low_balance_value": alert_settings.low_balance_value,
            "expiry_recipients": [
                m.user_id for m in admins if (m.user_id, NotificationKind.EXPIRY_REMINDER) not in opt_outs
            ],
            "low_balance_recipients": [
                m.user_id for m in admins if (m.user_id, NotificationKind.LOW_BALANCE) not in opt_outs
            ],
        }
        form = cls(data, initial=initial)
        choices = [
            (m.user_id, f"{m.user.get_full_name()} ({m.user.email}), {m.get_role_display().lower()}") for m in admins
        ]
        form.fields["expiry_recipients"].choices = choices
        form.fields["low_balance_recipients"].choices = choices
        return form
