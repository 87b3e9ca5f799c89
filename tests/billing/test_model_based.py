"""Model-based test of the charging rules: the real services against ``reference_model``.

A Hypothesis state machine buys packs, grants cloud credits, assigns and removes Flex,
logs usage (daily sessions short, normal and longer than a window; per-result jobs with
variants and quantities; the free product; duplicates of earlier ids), refunds jobs,
runs the expiry jobs and moves a clock forward. Every step goes through the services and
through the model; their answers must agree, and after every step the ledger must agree
with the packs, the model and the rollups.

Each example runs inside a savepoint that is rolled back at its end, with a fresh team.
``FLEX_HYPOTHESIS_EXAMPLES`` sets the number of examples (200 by default).
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from accounts.models import Membership, Role
from billing import services
from billing.models import CloudCreditBalance, EntryKind, LedgerEntry, TokenPack, UsageEvent, UsageRollup
from tests.billing import reference_model as rm
from tests.factories import ResellerFactory, TeamFactory, UserFactory

EXAMPLES = int(os.environ.get("FLEX_HYPOTHESIS_EXAMPLES", "200"))
STEPS = 15

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
EARLIEST_PURCHASE = datetime(2022, 1, 2, tzinfo=UTC)  # inside the factories' contract in every zone
LATEST_CLOCK = datetime(2030, 6, 1, tzinfo=UTC)  # the contract ends 2030-12-31
LEAP_DAY_PURCHASES = [datetime(2024, 2, 28, 10, tzinfo=UTC), datetime(2024, 2, 29, 10, tzinfo=UTC)]
DAILY_PRODUCTS = ["autocad", "revit"]
PER_RESULT_PRODUCTS = ["cfd-simulation", "generative-design", "design-automation"]
ALL_PRODUCTS = [*DAILY_PRODUCTS, *PER_RESULT_PRODUCTS, "cloud-rendering"]
HOURS = ["0.01", "0.25", "0.5", "1", "1.25", "3", "10"]  # design automation, 2 tokens an hour
_unique = itertools.count(1)

utc_datetimes = st.builds(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC),
    st.one_of(
        # Mostly while cloud credits still count, sometimes long after.
        st.datetimes(min_value=datetime(2022, 4, 5), max_value=datetime(2023, 3, 31)),
        st.datetimes(min_value=datetime(2022, 4, 5), max_value=datetime(2023, 3, 31)),
        st.datetimes(min_value=datetime(2022, 4, 5), max_value=datetime(2025, 6, 1)),
        # Just after a leap day: packs bought on 28 and 29 February expire together.
        st.datetimes(min_value=datetime(2024, 2, 29, 10), max_value=datetime(2024, 3, 2, 10)),
    ),
)
_small_steps = st.sampled_from([M, 4 * M, 5 * M, 30 * M, 3 * H, 23 * H, 24 * H, 25 * H, 3 * D])
clock_steps = st.one_of(  # mostly minutes to days, sometimes months
    _small_steps,
    _small_steps,
    st.integers(1, 3 * 24 * 60).map(lambda n: n * M),
    st.integers(1, 3 * 24 * 60).map(lambda n: n * M),
    st.sampled_from([30 * D, 91 * D, 180 * D, 364 * D]),
    st.integers(1, 200 * 24 * 60).map(lambda n: n * M),
)
# Token and credit amounts: some just around the job costs (5, 10, 11, 35 and 2 an hour).
pack_tokens = st.one_of(st.integers(1, 200), st.integers(1, 12))
credit_amounts = st.one_of(
    st.integers(1, 150).map(Decimal),
    st.sampled_from([Decimal("0.50"), Decimal("5"), Decimal("10"), Decimal("11"), Decimal("34.99"), Decimal("35")]),
)
scopes = st.one_of(  # mostly every product, sometimes a list
    st.just("all"),
    st.just("all"),
    st.lists(st.sampled_from(ALL_PRODUCTS), min_size=1, max_size=4, unique=True),
)


def _dec(value) -> Decimal:
    return Decimal(str(value))


class FlexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._savepoint = transaction.savepoint()
        self.team = None
        self.model: rm.FlexModel | None = None
        self.clock: datetime | None = None
        self.emails: list[str] = []
        self.users = {}
        self.sent: list[dict] = []  # raw events sent, for duplicates
        self.changed = False  # something was written since the last check

    def teardown(self) -> None:
        transaction.savepoint_rollback(self._savepoint)

    # Set-up ---------------------------------------------------------------------------------

    @initialize(
        start=utc_datetimes,
        time_zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles", "Pacific/Auckland"]),
        # The first user starts with every product; the others with a list, all or nothing.
        initial=st.lists(st.one_of(scopes, st.none()), min_size=1, max_size=2).map(lambda rest: ["all", *rest]),
        packs=st.lists(st.tuples(pack_tokens, st.integers(0, 60 * 24 * 60)), min_size=1, max_size=3),
        credits=st.lists(credit_amounts, max_size=2),
        leap_day_packs=st.lists(st.tuples(pack_tokens, st.sampled_from(LEAP_DAY_PURCHASES)), max_size=2),
    )
    def set_up(self, start, time_zone, initial, packs, credits, leap_day_packs) -> None:
        self.changed = True
        n = next(_unique)
        reseller = ResellerFactory(slug=f"model-reseller-{n}")
        self.team = TeamFactory(slug=f"model-team-{n}", reseller=reseller, time_zone=time_zone)
        self.clock = start
        for i in range(len(initial)):
            user = UserFactory(email=f"user{i}-{n}@model.example")
            Membership.objects.create(user=user, team=self.team, role=Role.PRIMARY_ADMIN if i == 0 else Role.MEMBER)
            self.users[user.email] = user
            self.emails.append(user.email)
        self.model = rm.FlexModel(time_zone=time_zone, members=self.emails)
        at = datetime(2022, 1, 1, tzinfo=UTC)
        for email, scope in zip(self.emails, initial, strict=True):
            if scope is not None:
                self._assign(email, scope, at)
        for tokens, minutes_ago in packs:
            self._buy(tokens, self.clock - minutes_ago * M)
        for tokens, purchased_at in leap_day_packs:
            if purchased_at <= self.clock:
                self._buy(tokens, purchased_at)
        for amount in credits:
            self._grant(amount, min(self.clock, rm.CLOUD_CREDITS_EXPIRE_AT - M) - 30 * D)

    # Clock ----------------------------------------------------------------------------------

    @rule(data=st.data())
    def advance_clock(self, data) -> None:
        """Minutes to months ahead; sometimes to around the next pack expiry or the cutoff."""
        if data.draw(st.integers(0, 3), label="to_an_expiry") == 0:
            offset = data.draw(st.sampled_from([-S, 0 * S, S, H]), label="offset")
            ahead = sorted(
                {p.expires_at for p in self.model.packs.values() if p.expires_at + offset > self.clock}
                | ({rm.CLOUD_CREDITS_EXPIRE_AT} if rm.CLOUD_CREDITS_EXPIRE_AT + offset > self.clock else set())
            )
            if ahead:
                self.clock = min(data.draw(st.sampled_from(ahead[:3]), label="expiry") + offset, LATEST_CLOCK)
                if data.draw(st.booleans(), label="jobs_run_then"):
                    self._run_expiry_jobs("both")
                return
        self.clock = min(self.clock + data.draw(clock_steps, label="step"), LATEST_CLOCK)

    # Packs and credits ----------------------------------------------------------------------

    @rule(data=st.data())
    def purchase(self, data) -> None:
        self.changed = True
        tokens = data.draw(pack_tokens, label="tokens")
        choices = ["recent", "recent", "any"]
        if self.model.packs:
            choices.append("same_time_as_another_pack")
        if self.clock >= LEAP_DAY_PURCHASES[-1]:
            choices += ["leap_day", "leap_day"]
        how = data.draw(st.sampled_from(choices), label="purchased")
        if how == "recent":
            purchased_at = self.clock - data.draw(st.integers(0, 3 * 24 * 60), label="minutes_ago") * M
        elif how == "any":
            purchased_at = self.clock - data.draw(st.integers(0, 400 * 24 * 60), label="minutes_ago") * M
        elif how == "leap_day":
            purchased_at = data.draw(st.sampled_from(LEAP_DAY_PURCHASES), label="leap_day")
        else:
            other = data.draw(st.sampled_from(sorted(self.model.packs)), label="like_pack")
            purchased_at = self.model.packs[other].purchased_at
        self._buy(tokens, purchased_at)

    def _buy(self, tokens: int, purchased_at: datetime) -> None:
        purchased_at = max(purchased_at, EARLIEST_PURCHASE)
        reference = f"ORD-{next(_unique)}"
        model_pack, model_created = self.model.record_purchase(
            reference=reference, tokens=tokens, purchased_at=purchased_at
        )
        pack, created = services.record_purchase(
            team=self.team, reference=reference, tokens=tokens, purchased_at=purchased_at, now=self.clock
        )
        assert created is model_created is True
        assert (pack.purchased_at, pack.expires_at) == (model_pack.purchased_at, model_pack.expires_at)

    @rule(data=st.data(), other_tokens=st.booleans())
    def record_same_order_again(self, data, other_tokens) -> None:
        """The same data returns the first pack; other data is a conflict."""
        self.changed = True
        if not self.model.packs:
            return
        reference = data.draw(st.sampled_from(sorted(self.model.packs)), label="reference")
        first = self.model.packs[reference]
        tokens = first.tokens + other_tokens
        try:
            _, model_created = self.model.record_purchase(
                reference=reference, tokens=tokens, purchased_at=first.purchased_at
            )
        except rm.Refused:
            model_created = None
        try:
            _, created = services.record_purchase(
                team=self.team, reference=reference, tokens=tokens, purchased_at=first.purchased_at, now=self.clock
            )
        except ValidationError:
            created = None
        assert created == model_created

    @rule(credits=credit_amounts, minutes_ago=st.integers(0, 300 * 24 * 60))
    def grant_credits(self, credits, minutes_ago) -> None:
        self.changed = True
        self._grant(credits, min(self.clock, rm.CLOUD_CREDITS_EXPIRE_AT - M) - minutes_ago * M)

    def _grant(self, credits: Decimal, granted_at: datetime) -> None:
        granted_at = max(granted_at, EARLIEST_PURCHASE)
        balance = services.grant_cloud_credits(team=self.team, credits=credits, granted_at=granted_at)
        self.model.grant_cloud_credits(key=balance.pk, credits=credits, granted_at=granted_at)

    @rule(jobs=st.sampled_from(["packs", "cloud_credits", "both"]))
    def run_expiry_jobs(self, jobs) -> None:
        self._run_expiry_jobs(jobs)

    def _run_expiry_jobs(self, jobs: str) -> None:
        self.changed = True
        if jobs in ("packs", "both"):
            assert services.expire_packs(now=self.clock) == self.model.expire_packs(now=self.clock)
        if jobs in ("cloud_credits", "both"):
            assert services.expire_cloud_credits(now=self.clock) == self.model.expire_cloud_credits(now=self.clock)

    # Flex -------------------------------------------------------------------------------------

    def _assign(self, email: str, scope, at: datetime) -> None:
        self.changed = True
        self.model.assign_flex(user=email, products=scope, at=at)
        services.assign_flex(team=self.team, user=self.users[email], products=scope, actor=None, at=at)

    @rule(data=st.data(), scope=scopes)
    def assign_flex(self, data, scope) -> None:
        email = data.draw(st.sampled_from(self.emails), label="user")
        self._assign(email, scope, self.clock)

    @rule(data=st.data())
    def remove_flex(self, data) -> None:
        self.changed = True
        email = data.draw(st.sampled_from(self.emails), label="user")
        removed = self.model.remove_flex(user=email, at=self.clock)
        row = services.remove_flex(team=self.team, user=self.users[email], actor=None, at=self.clock)
        assert (row is not None) == removed

    # Usage ------------------------------------------------------------------------------------

    def _moments(self) -> list[datetime]:
        """Moments where a rule changes: purchases, expiries, the cutoff, Flex changes, window ends."""
        moments = {rm.CLOUD_CREDITS_EXPIRE_AT}
        for pack in self.model.packs.values():
            moments |= {pack.purchased_at, pack.expires_at}
        for assignments in self.model.assignments.values():
            for a in assignments:
                moments |= {a.assigned_at, a.removed_at} - {None}
        for windows in self.model.windows.values():
            moments |= {w.closes_at for w in windows}
        return sorted(m for m in moments if self.clock - 47 * H <= m <= self.clock)

    def _start(self, data) -> datetime:
        """When a job or launch starts: within the last 47 hours, sometimes exactly at a moment."""
        moments = self._moments()
        if moments and data.draw(st.integers(0, 2), label="at_a_moment") == 0:
            return data.draw(st.sampled_from(moments), label="moment")
        return self.clock - data.draw(st.integers(0, 47 * 3600), label="started_seconds_ago") * S

    def _daily_times(self, data) -> tuple[datetime, datetime]:
        kind = data.draw(st.sampled_from(["short", "normal", "normal", "long", "edge", "edge"]), label="session")
        duration = {
            "short": st.integers(0, 299),
            "normal": st.integers(300, 12 * 3600),
            "long": st.integers(24 * 3600 + 1, 60 * 3600),
            "edge": st.sampled_from([299, 300, 24 * 3600, 24 * 3600 + 1, 48 * 3600, 48 * 3600 + 1]),
        }[kind]
        length = data.draw(duration, label="seconds_long") * S
        ended_ago = data.draw(
            st.one_of(*[st.integers(0, 48 * 3600)] * 8, st.sampled_from([48 * 3600, 48 * 3600 + 1, 50 * 3600])),
            label="ended_seconds_ago",
        )
        end = self.clock - ended_ago * S
        if data.draw(st.integers(0, 3), label="start_at_a_moment") == 0:
            start = self._start(data)
            return start, min(start + length, self.clock)
        return end - length, end

    def _boundary_times(self, data, email: str, product: str) -> tuple[datetime, datetime] | None:
        """A session that starts inside an open window and ends just around its close."""
        windows = self.model.windows.get((email, product)) or []
        if not windows:
            return None
        window = data.draw(st.sampled_from(windows), label="window")
        start = window.opened_at + data.draw(st.sampled_from([0 * S, S, H, 24 * H - S]), label="after_open")
        after_close = st.sampled_from([-S, 0 * S, 0 * S, S, 24 * H, 24 * H + S])
        end = window.closes_at + data.draw(after_close, label="after_close")
        if end > self.clock or start > end:
            return None
        return start, end

    def _new_event(self, data) -> dict:
        # The first user works most, so that windows meet.
        email = data.draw(st.sampled_from([self.emails[0], self.emails[0], *self.emails]), label="user")
        kinds = ["daily", "daily", "boundary", "per_result", "per_result", "drain", "drain", "free"]
        kind = data.draw(st.sampled_from(kinds), label="kind")
        raw = {"id": f"ev-{next(_unique)}", "user": email}
        if kind in ("daily", "boundary"):
            product = data.draw(st.sampled_from(["autocad", *DAILY_PRODUCTS]), label="product")
            times = self._boundary_times(data, email, product) if kind == "boundary" else None
            start, end = times or self._daily_times(data)
            raw.update(product=product, started_at=start.isoformat(), ended_at=end.isoformat())
            return raw
        start = self._start(data)
        raw.update(started_at=start.isoformat())
        if kind == "drain":
            quantity = self._draining_hours(data, start)
            if quantity is not None:
                raw.update(product="design-automation", quantity=quantity)
                return raw
        if kind == "free":
            raw.update(product="cloud-rendering")
            return raw
        product = data.draw(st.sampled_from(PER_RESULT_PRODUCTS), label="product")
        raw.update(product=product)
        if product == "cfd-simulation":
            raw["variant"] = data.draw(st.sampled_from(["simple", "moderate", "complex"]), label="variant")
            raw["quantity"] = data.draw(st.integers(1, 3), label="quantity")
        elif product == "generative-design":
            raw["quantity"] = data.draw(st.integers(1, 2), label="quantity")
        else:
            raw["quantity"] = data.draw(st.sampled_from(HOURS), label="quantity")
        return raw

    def _draining_hours(self, data, start: datetime) -> str | None:
        """Hours of design automation (2 tokens an hour) that leave exactly 0, 0.5 or 1 of the
        tokens or credits available, or ask for 0.5 more than there is."""
        credits = self.model.credits_available(start, now=self.clock, historical=False)
        pool = data.draw(st.sampled_from(["tokens", "credits", "credits"] if credits else ["tokens"]), label="drain")
        available = getattr(self.model, f"{pool}_available")(start, now=self.clock, historical=False)
        leave = data.draw(st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1), Decimal("-0.5")]), label="leave")
        cost = available - leave
        hours = (cost / 2).quantize(Decimal("0.01"))
        return str(hours) if hours > 0 else None

    def _duplicate(self, data, batch: list[dict]) -> dict | None:
        earlier = self.sent + batch
        if not earlier:
            return None
        raw = dict(data.draw(st.sampled_from(earlier), label="duplicate_of"))
        change = data.draw(st.sampled_from(["none", "user", "earlier"]), label="change")
        if change == "user":
            raw["user"] = data.draw(st.sampled_from(self.emails), label="user")
        elif change == "earlier":  # same id, other times: the first copy still decides
            shift = data.draw(st.integers(1, 3 * 3600), label="seconds_earlier") * S
            for name in ("started_at", "ended_at"):
                if name in raw:
                    raw[name] = (datetime.fromisoformat(raw[name]) - shift).isoformat()
        return raw

    @staticmethod
    def _model_event(raw: dict) -> rm.Event:
        ended = raw.get("ended_at")
        return rm.Event(
            id=raw["id"],
            user=raw["user"],
            product=raw["product"],
            started_at=datetime.fromisoformat(raw["started_at"]),
            ended_at=datetime.fromisoformat(ended) if ended else None,
            variant=raw.get("variant", ""),
            quantity=_dec(raw.get("quantity", 1)),
        )

    # Two rules log usage, so that it is what most steps do. (Hypothesis also favours
    # rules that sort first: fewest arguments, then by name; hence "add_usage".)
    @rule(data=st.data())
    def add_usage(self, data) -> None:
        self._log(data)

    @rule(data=st.data())
    def log_usage(self, data) -> None:
        self._log(data)

    def _log(self, data) -> None:
        self.changed = True
        size = data.draw(st.integers(1, 3), label="batch_size")
        historical = data.draw(st.sampled_from([False, False, True]), label="historical")
        batch: list[dict] = []
        for _ in range(size):
            raw = self._duplicate(data, batch) if data.draw(st.integers(0, 4), label="dup") == 0 else None
            batch.append(raw or self._new_event(data))
        expected = self.model.log_usage([self._model_event(r) for r in batch], now=self.clock, historical=historical)
        actual = services.log_usage(team=self.team, events=batch, now=self.clock, historical=historical)
        self.sent.extend(batch)
        for raw, want, got in zip(batch, expected, actual, strict=True):
            _assert_same_result(raw, want, got)

    @rule(data=st.data())
    def refund(self, data) -> None:
        self.changed = True
        ids = sorted({r["id"] for r in self.sent})
        jobs = sorted(
            i
            for i, r in self.model.current.items()
            if r.status == rm.CHARGED and rm.PRODUCTS[r.event.product].charge_type == rm.PER_RESULT
        )
        if not ids:
            return
        # Mostly charged jobs; sometimes any id (refused, or replayed).
        pool = jobs if jobs and data.draw(st.integers(0, 3), label="any_id") else ids
        event_id = data.draw(st.sampled_from(pool), label="event_id")
        try:
            want = self.model.refund_usage(event_id=event_id, now=self.clock)
        except rm.Refused:
            want = None
        try:
            got = services.refund_usage(team=self.team, event_id=event_id, now=self.clock)
        except ValidationError:
            got = None
        if want is None or got is None:
            assert want is got is None, f"refund of {event_id}: model {want}, service {got}"
            return
        assert (
            _dec(got["refunded_tokens"]),
            _dec(got["refunded_cloud_credits"]),
            _dec(got["forfeited_tokens"]),
            _dec(got["forfeited_cloud_credits"]),
            datetime.fromisoformat(got["refunded_at"]),
            got["replayed"],
        ) == (
            want.refunded_tokens,
            want.refunded_cloud_credits,
            want.forfeited_tokens,
            want.forfeited_cloud_credits,
            want.refunded_at,
            want.replayed,
        ), f"refund of {event_id}"

    # After every step -----------------------------------------------------------------------

    @invariant()
    def ledger_agrees(self) -> None:
        if not self.changed:
            return
        self.changed = False
        team, model = self.team, self.model
        # Every ledger entry of the team, summed per pack / credit balance and per kind.
        per_pack: dict[str, Decimal] = defaultdict(Decimal)
        per_balance: dict[int, Decimal] = defaultdict(Decimal)
        per_kind: dict[tuple[str, bool], Decimal] = defaultdict(Decimal)
        for reference, balance_id, kind, amount in LedgerEntry.objects.filter(team=team).values_list(
            "pack__reference", "credit_balance_id", "kind", "amount"
        ):
            if reference is not None:
                per_pack[reference] += amount
            else:
                per_balance[balance_id] += amount
            per_kind[(kind, reference is not None)] += amount

        packs = {
            reference: (remaining, expired_at is not None)
            for reference, remaining, expired_at in TokenPack.objects.filter(team=team).values_list(
                "reference", "remaining", "expired_at"
            )
        }
        assert set(packs) == set(model.packs)
        for reference, (remaining, closed) in packs.items():
            expected = model.packs[reference]
            assert remaining >= 0, reference
            assert remaining == expected.remaining == per_pack[reference], reference
            assert closed == expected.closed, reference
        balances = dict(CloudCreditBalance.objects.filter(team=team).values_list("pk", "remaining"))
        assert set(balances) == set(model.credits)
        for pk, remaining in balances.items():
            assert remaining >= 0
            assert remaining == model.credits[pk].remaining == per_balance[pk]

        # Usage is net of what re-pricing gave back; expiry net of what late usage took back.
        usage = per_kind[(EntryKind.USAGE, True)] + per_kind[(EntryKind.REPRICE, True)]
        credit_usage = per_kind[(EntryKind.USAGE, False)] + per_kind[(EntryKind.REPRICE, False)]
        refunds, credit_refunds = per_kind[(EntryKind.REFUND, True)], per_kind[(EntryKind.REFUND, False)]
        assert -usage == model.charged_tokens
        assert refunds == model.refunded_tokens
        assert -credit_usage == model.charged_credits
        assert credit_refunds == model.refunded_credits
        expiry = per_kind[(EntryKind.EXPIRY, True)] + per_kind[(EntryKind.EXPIRY_REVERSAL, True)]
        credit_expiry = per_kind[(EntryKind.EXPIRY, False)] + per_kind[(EntryKind.EXPIRY_REVERSAL, False)]
        assert -expiry == model.expired_tokens
        assert -credit_expiry == model.expired_credits

        events = {
            row[0]: row[1:]
            for row in UsageEvent.objects.filter(team=team).values_list(
                "event_id", "status", "reason", "tokens", "cloud_credits", "refunded_at"
            )
        }
        assert set(events) == set(model.current)
        for event_id, (status, reason, tokens, credits, refunded_at) in events.items():
            want = model.current[event_id]  # re-priced since it was first answered
            got = (status, reason, tokens, credits, refunded_at is not None)
            assert got == (want.status, want.reason, want.tokens, want.cloud_credits, event_id in model.refunds)
        # Tokens charged by events minus tokens refunded equal what the ledger took.
        assert sum((e[2] for e in events.values()), Decimal(0)) - refunds == -(usage + refunds)

        emails = {u.pk: email for email, u in self.users.items()}
        rollups = {
            (day, product, emails[user_id]): (tokens, credits, charges, denials)
            for day, product, user_id, tokens, credits, charges, denials in UsageRollup.objects.filter(
                team=team
            ).values_list("day", "product", "user_id", "tokens", "cloud_credits", "charges", "denials")
            if tokens or credits or charges or denials
        }
        expected_rollups = {
            key: (g.tokens, g.cloud_credits, g.charges, g.denials) for key, g in model.nonempty_rollups().items()
        }
        assert rollups == expected_rollups
        assert sum((r[0] for r in rollups.values()), Decimal(0)) == -(usage + refunds)
        assert sum((r[1] for r in rollups.values()), Decimal(0)) == -(credit_usage + credit_refunds)


def _assert_same_result(raw: dict, want: rm.Result, got: dict) -> None:
    where = f"event {raw}"
    if want.status == rm.ERROR:
        assert got["status"] == "error", f"{where}: model error {want.error}, service {got}"
        assert got["error"]["code"] == want.error, where
        return
    assert got["status"] != "error", f"{where}: service error {got}, model {want.status}"
    summary = (got["status"], got["reason"], _dec(got["tokens"]), _dec(got["cloud_credits"]), got["replayed"])
    assert summary == (want.status, want.reason, want.tokens, want.cloud_credits, want.replayed), where
    charges = [
        (
            datetime.fromisoformat(c["at"]),
            c["status"],
            c["reason"],
            _dec(c["tokens"]),
            _dec(c["cloud_credits"]),
            [(d["pack"], _dec(d["tokens"])) for d in c["draws"]],
        )
        for c in got["charges"]
    ]
    expected = [(c.at, c.status, c.reason, c.tokens, c.credits, c.pack_draws) for c in want.charges]
    assert charges == expected, where
    repriced = [
        (r["id"], r["now"]["status"], r["now"]["reason"], _dec(r["now"]["tokens"]), _dec(r["now"]["cloud_credits"]))
        for r in got.get("repriced", [])
    ]
    assert repriced == want.repriced, where


def test_services_agree_with_the_reference_model(db):
    run_state_machine_as_test(
        FlexMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture,
                HealthCheck.filter_too_much,
                HealthCheck.data_too_large,
            ],
        ),
    )
