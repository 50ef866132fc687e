"""Fill a sandbox mailbox and a sandbox Salesforce user's org with realistic, varied data.

    python manage.py sandbox_seed --mailbox dana@contoso.test --sf-user dana@contoso.test \
        --events 200 --contacts 100 --tasks 50 --overlap 0.2 --seed 7

`--overlap` is the fraction of items that already exist on both sides (same subject/start/end
for events, same e-mail for contacts, same subject + due date for tasks): the duplicates a first
sync must match instead of creating. The same --seed produces the same data, and re-running it
adds nothing twice.
"""

from __future__ import annotations

import datetime as dt
import random

from django.core.management.base import BaseCommand

from sandbox.microsoft import services as ms
from sandbox.microsoft.models import ExtendedProperty, Item, ItemKind
from sandbox.microsoft.wire import WINDOWS_ZONES, zone

SEED_PROP = "String {0e7d3a63-5f55-4d3c-9d0a-5ab1d5ed5eed} Name SandboxSeedKey"
ZONES = ["W. Europe Standard Time", "Eastern Standard Time", "Pacific Standard Time", "GMT Standard Time",
         "India Standard Time", "Tokyo Standard Time", "AUS Eastern Standard Time", "Central Standard Time",
         "E. South America Standard Time", "Romance Standard Time", "UTC"]
FIRST = ["Ada", "José", "Zoë", "Søren", "Aiko", "Grace", "Mateo", "Élodie", "Nikolaj", "Priya", "Oluwaseun",
         "Łukasz", "Fatima", "王", "Björk", "Chloé", "Dmitri", "Ingrid", "Kwame", "Mei"]
LAST = ["Lovelace", "Álvarez", "Øster", "Nakamura", "Hopper", "Müller", "Dubois", "Kowalski", "Iyer", "Okafor",
        "芳", "Guðmundsdóttir", "Schmidt", "O'Brien", "van der Berg", "Rossi", "Petrov", "Haddad", "Kim", "Ng"]
COMPANIES = ["Globex", "Initech", "Umbrella Corp", "Soylent", "Stark Industries", "Wayne Enterprises",
             "Tyrell", "Cyberdyne", "Wonka Industries", "Acme Überseehandel"]
TOPICS = ["Pipeline review", "Quarterly business review", "Renewal call", "Demo", "Kick-off", "Pricing workshop",
          "Contract negotiation", "Onboarding", "Steering committee", "Lunch", "Site visit", "Réunion d'équipe",
          "Planung Q3", "見積もりの確認"]
TASK_TOPICS = ["Send proposal", "Follow up", "Prepare slides", "Update forecast", "Call back", "Draft contract",
               "Review NDA", "Book travel", "Check references", "Send invoice"]
LONG_BODY = ("Agenda:\n" + "\n".join(f"{i}. Discuss item {i} in detail, with notes and decisions." for i in range(1, 400)))


def _fmt(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _sf_time(value_utc: dt.datetime) -> str:
    return value_utc.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class Command(BaseCommand):
    help = "Seed a sandbox mailbox and Salesforce org with varied, partly overlapping data."

    def add_arguments(self, parser):
        parser.add_argument("--mailbox", required=True)
        parser.add_argument("--sf-user", required=True)
        parser.add_argument("--events", type=int, default=50)
        parser.add_argument("--contacts", type=int, default=30)
        parser.add_argument("--tasks", type=int, default=20)
        parser.add_argument("--overlap", type=float, default=0.2)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, **opts):
        from sandbox.salesforce.services import sf_records, sf_user_ensure

        rnd = random.Random(opts["seed"])
        seed = opts["seed"]
        overlap = min(max(opts["overlap"], 0.0), 1.0)
        mailbox = ms.mailbox_ensure(opts["mailbox"])
        sf_user = sf_user_ensure(email=opts["sf_user"])
        existing_sf = {s: sf_records(org=sf_user.org, sobject=s) for s in ("Event", "Contact", "Task", "Account")}
        self.counts = {k: 0 for k in ("events", "contacts", "tasks", "sf_events", "sf_contacts", "sf_tasks",
                                      "sf_accounts", "overlap_events", "overlap_contacts", "overlap_tasks")}
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        accounts = self._accounts(sf_user, existing_sf["Account"])
        self._events(rnd, seed, mailbox, sf_user, opts["events"], overlap, today, existing_sf["Event"])
        self._contacts(rnd, seed, mailbox, sf_user, opts["contacts"], overlap, existing_sf["Contact"], accounts)
        self._tasks(rnd, seed, mailbox, sf_user, opts["tasks"], overlap, today, existing_sf["Task"])
        crm = self._crm(rnd, sf_user, accounts, today)
        c = self.counts
        self.stdout.write(
            f"Outlook {mailbox.email}: {c['events']} events, {c['contacts']} contacts, {c['tasks']} tasks created\n"
            f"Salesforce {sf_user.username} (org {sf_user.org.name}): {c['sf_events']} events, "
            f"{c['sf_contacts']} contacts, {c['sf_tasks']} tasks, {c['sf_accounts']} accounts created\n"
            f"Already on both sides: {c['overlap_events']} events, {c['overlap_contacts']} contacts, "
            f"{c['overlap_tasks']} tasks\n"
            f"Salesforce CRM records created: {crm}; Event fields Meeting_Type__c (picklist), Billable__c"
        )

    # --- Salesforce helpers ---------------------------------------------------------------------

    def _sf_create(self, user, sobject, fields, counter):
        from sandbox.salesforce.services import sf_record_create

        record = sf_record_create(user=user, sobject=sobject, fields=fields)
        self.counts[counter] += 1
        return record

    def _accounts(self, user, existing):
        names = {r.get("Name"): r["Id"] for r in existing}
        for name in COMPANIES:
            if name not in names:
                names[name] = self._sf_create(user, "Account", {"Name": name}, "sf_accounts")["Id"]
        return names

    def _crm(self, rnd, user, accounts, today) -> str:
        """Leads, Opportunities and Cases to relate meetings to, and the org's meeting-type picklist.

        Not required in Salesforce (every Event the engine writes would need it); LinkPoint admins can
        make it a required SnapField instead.
        """
        from sandbox.salesforce.services import sf_custom_field_ensure, sf_record_create, sf_records

        sf_custom_field_ensure(org=user.org, sobject="Event", name="Meeting_Type__c", label="Meeting type",
                               type="picklist",
                               picklist=["Discovery", "Demo", "Negotiation", "Check-in", "Internal"])
        sf_custom_field_ensure(org=user.org, sobject="Event", name="Billable__c", label="Billable",
                               type="checkbox")
        made = {"Lead": 0, "Opportunity": 0, "Case": 0}
        have = {s: {r.get("Name") or r.get("Subject") for r in sf_records(org=user.org, sobject=s)} for s in made}
        for i in range(12):
            first, last = FIRST[(i * 3) % len(FIRST)], LAST[(i * 7 + 3) % len(LAST)]
            if f"{first} {last}" not in have["Lead"]:
                sf_record_create(user=user, sobject="Lead", fields={
                    "FirstName": first, "LastName": last, "Company": f"{last} & Partners",
                    "Email": f"lead{i}@{('northwind', 'fabrikam', 'contoso-leads', 'tailspin')[i % 4]}.example",
                    "Status": ("Open - Not Contacted", "Working - Contacted")[i % 2]})
                made["Lead"] += 1
        stages = ("Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review")
        for i, (company, account_id) in enumerate(sorted(accounts.items())):
            for topic in ("Expansion", "Renewal"):
                name = f"{company} {topic} {today.year}"
                if name not in have["Opportunity"]:
                    sf_record_create(user=user, sobject="Opportunity", fields={
                        "Name": name, "AccountId": account_id, "StageName": stages[(i + len(topic)) % 4],
                        "CloseDate": (today + dt.timedelta(days=30 + 9 * i)).date().isoformat(),
                        "Amount": float(5000 * (i + 2))})
                    made["Opportunity"] += 1
            subject = f"{company}: login problems after upgrade"
            if subject not in have["Case"]:
                sf_record_create(user=user, sobject="Case", fields={
                    "Subject": subject, "AccountId": account_id, "Origin": ("Email", "Phone", "Web")[i % 3]})
                made["Case"] += 1
        return ", ".join(f"{n} {_plural(k.lower(), n)}" for k, n in made.items())

    # --- events -----------------------------------------------------------------------------------

    def _event_plan(self, rnd, i, shared, today):
        """One event's shape; shared events are timed singles (they must exist identically in Salesforce)."""
        tz_name = rnd.choice(ZONES) if not shared else "UTC"
        day = today + dt.timedelta(days=rnd.randint(-30, 60))
        subject = f"{rnd.choice(TOPICS)} – {rnd.choice(COMPANIES)}"
        body = {"contentType": "text", "content": LONG_BODY if rnd.random() < 0.05 else f"Notes for {subject}."}
        extra = {"sensitivity": "private"} if rnd.random() < 0.1 else {}
        kind = "timed" if shared else rnd.choices(["timed", "allday", "multiday", "recurring"], [70, 10, 8, 12])[0]
        if kind == "timed":
            start = day + dt.timedelta(hours=rnd.randint(7, 17), minutes=rnd.choice([0, 15, 30, 45]))
            end = start + dt.timedelta(minutes=rnd.choice([15, 30, 45, 60, 90, 120]))
        else:
            start, end = day, day + dt.timedelta(days=1 if kind != "multiday" else rnd.randint(2, 14))
            if kind == "recurring":
                start = day + dt.timedelta(hours=rnd.randint(8, 16))
                end = start + dt.timedelta(minutes=30)
        payload = {"subject": subject, "body": body, "start": {"dateTime": _fmt(start), "timeZone": tz_name},
                   "end": {"dateTime": _fmt(end), "timeZone": tz_name}, "isAllDay": kind in ("allday", "multiday"),
                   "transactionId": f"sandbox-seed-{i}", **extra}
        if rnd.random() < 0.3:
            payload["location"] = {"displayName": rnd.choice(["Room 4.12", "Teams", "Café Müller", "HQ, Zürich"])}
        if kind == "recurring":
            ptype = rnd.choice(["daily", "weekly", "absoluteMonthly", "relativeMonthly"])
            weekday = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][start.weekday()]
            pattern = {"type": ptype, "interval": 1}
            if ptype == "weekly":
                pattern.update(daysOfWeek=[weekday], firstDayOfWeek="sunday")
            elif ptype == "absoluteMonthly":
                pattern["dayOfMonth"] = start.day
            elif ptype == "relativeMonthly":
                pattern.update(daysOfWeek=[weekday], index="first")
            rng = ({"type": "numbered", "numberOfOccurrences": rnd.randint(4, 12)} if rnd.random() < 0.6 else
                   {"type": "endDate", "endDate": (start + dt.timedelta(days=90)).date().isoformat()})
            payload["recurrence"] = {"pattern": pattern, "range": {**rng, "startDate": start.date().isoformat()}}
        return payload, start, end

    def _events(self, rnd, seed, mailbox, sf_user, n, overlap, today, existing):
        shared_n = round(n * overlap)
        sf_subjects = {r.get("Subject") for r in existing}
        for i in range(n):
            payload, start, end = self._event_plan(rnd, i, i < shared_n, today)
            payload["transactionId"] = f"sandbox-seed-{seed}-e{i}"
            with_exceptions = rnd.random() < 0.8  # drawn every time, so a re-run replays the same choices
            item, created = ms.event_create(mailbox, payload)
            self.counts["events"] += created
            if created and item.event_type == "seriesMaster" and with_exceptions:
                self._exceptions(item)
            if i < shared_n:
                self.counts["overlap_events"] += 1
                if created:  # its Salesforce twin is made with it, once
                    self._sf_create(sf_user, "Event", {
                        "Subject": payload["subject"][:255], "StartDateTime": _sf_time(start),
                        "EndDateTime": _sf_time(end), "Description": payload["body"]["content"][:32000],
                        "IsPrivate": payload.get("sensitivity") == "private"}, "sf_events")
        # Salesforce-only events, so both sides have something the other lacks.
        for i in range(n - shared_n):
            start = today + dt.timedelta(days=rnd.randint(-30, 60), hours=rnd.randint(8, 17))
            end = start + dt.timedelta(minutes=rnd.choice([30, 60]))
            subject = f"SF: {rnd.choice(TOPICS)} #{seed}-{i}"
            if subject not in sf_subjects:
                self._sf_create(sf_user, "Event", {"Subject": subject, "StartDateTime": _sf_time(start),
                                                   "EndDateTime": _sf_time(end)}, "sf_events")

    def _exceptions(self, master):
        from sandbox.microsoft.resources import series_occurrences

        window = (master.start_utc, master.start_utc + dt.timedelta(days=120))
        spans = series_occurrences(master, window)
        if len(spans) < 3:
            return
        moved = spans[1]
        ms.occurrence_update(master, moved[0], {"subject": master.data["subject"] + " (moved)"})
        ms.occurrence_delete(master, spans[2][0])

    # --- contacts ------------------------------------------------------------------------------------

    def _contacts(self, rnd, seed, mailbox, sf_user, n, overlap, existing, accounts):
        shared_n = round(n * overlap)
        seeded = set(ExtendedProperty.objects.filter(item__mailbox=mailbox, prop_id=SEED_PROP)
                     .values_list("value_ci", flat=True))
        sf_emails = {(r.get("Email") or "").lower() for r in existing} | {
            f"{r.get('FirstName')}|{r.get('LastName')}" for r in existing}
        for i in range(n):
            key = f"{seed}-c{i}"
            first, last, company = rnd.choice(FIRST), rnd.choice(LAST), rnd.choice(COMPANIES)
            slug = f"{first}.{last}".lower().encode("ascii", "ignore").decode().replace(" ", "").replace("'", "")
            primary = f"{slug or 'contact'}.{seed}.{i}@{company.split()[0].lower()}.example.test"
            shared = i < shared_n
            emails = [{"name": f"{first} {last}", "address": primary}]
            shape = rnd.random()
            if not shared and (shape < 0.1 or i % 9 == 4):
                emails = []  # no e-mail at all
            elif shape > 0.8:
                emails += [{"address": f"{slug or 'alt'}.{i}.{k}@mail.example.test"} for k in range(1, rnd.randint(2, 3))]
            payload = {"givenName": first, "companyName": company, "emailAddresses": emails,
                       "singleValueExtendedProperties": [{"id": SEED_PROP, "value": key}]}
            no_surname = rnd.random() < 0.1 or i % 7 == 3
            if shared or not no_surname:
                payload["surname"] = last  # some Outlook contacts have no surname
            if rnd.random() < 0.4:
                payload["businessPhones"] = [f"+1 555 01{rnd.randint(10, 99)}"]
            if key not in seeded:
                ms.contact_create(mailbox, payload)
                self.counts["contacts"] += 1
            if shared:
                self.counts["overlap_contacts"] += 1
                if primary not in sf_emails:
                    self._sf_create(sf_user, "Contact", {"FirstName": first, "LastName": last, "Email": primary,
                                                         "AccountId": accounts[company]}, "sf_contacts")
        for i in range(n - shared_n):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            fields = {"FirstName": first, "LastName": f"{last} {seed}-{i}"}
            if rnd.random() < 0.85:
                fields["Email"] = f"sf.{seed}.{i}@{rnd.choice(COMPANIES).split()[0].lower()}.example.test"
            if fields.get("Email", "").lower() not in sf_emails and f"{first}|{fields['LastName']}" not in sf_emails:
                self._sf_create(sf_user, "Contact", fields, "sf_contacts")

    # --- tasks -----------------------------------------------------------------------------------------

    def _tasks(self, rnd, seed, mailbox, sf_user, n, overlap, today, existing):
        shared_n = round(n * overlap)
        todo = ms.todo_default_list(mailbox)
        have = set(Item.objects.filter(mailbox=mailbox, kind=ItemKind.TODO_TASK, parent=todo, deleted=False)
                   .values_list("data__title", flat=True))
        sf_subjects = {r.get("Subject") for r in existing}
        statuses = [("notStarted", "Not Started"), ("inProgress", "In Progress"), ("completed", "Completed"),
                    ("waitingOnOthers", "Waiting on someone else"), ("deferred", "Deferred")]
        for i in range(n):
            title = f"{rnd.choice(TASK_TOPICS)}: {rnd.choice(COMPANIES)} ({seed}-{i})"
            due = (today + dt.timedelta(days=rnd.randint(-10, 30))).date()
            status = rnd.choice(statuses)
            importance = rnd.choice(["low", "normal", "high"])
            details = "Details…" if rnd.random() < 0.7 else ""
            if title not in have:
                ms.todo_task_create(mailbox, {
                    "title": title, "status": status[0], "importance": importance,
                    "dueDateTime": {"dateTime": f"{due.isoformat()}T00:00:00.0000000", "timeZone": "UTC"},
                    "body": {"contentType": "text", "content": details}}, todo)
                self.counts["tasks"] += 1
            if i < shared_n:
                self.counts["overlap_tasks"] += 1
                if title not in sf_subjects:
                    self._sf_create(sf_user, "Task", {
                        "Subject": title, "ActivityDate": due.isoformat(), "Status": status[1],
                        "Priority": {"low": "Low", "normal": "Normal", "high": "High"}[importance]}, "sf_tasks")
        for i in range(n - shared_n):
            subject = f"SF: {rnd.choice(TASK_TOPICS)} ({seed}-{i})"
            due = (today + dt.timedelta(days=rnd.randint(-10, 30))).date().isoformat()
            if subject not in sf_subjects:
                self._sf_create(sf_user, "Task", {"Subject": subject, "ActivityDate": due}, "sf_tasks")


assert all(zone(z) for z in ZONES) and set(ZONES) <= set(WINDOWS_ZONES)


def _plural(noun: str, n: int) -> str:
    if n == 1:
        return noun
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"

