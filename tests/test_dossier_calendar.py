"""Working-day deadlines on real Vietnamese dates (Tết 2026, 30/4-1/5, official swaps).

Each expected date is worked out by hand beside the test. Rule under test (module docstring of
bot.dossiers.calendar): the start day is the receipt date, or the next working day when the
receipt is on a non-working day or at/after the cut-off; n working days are due at 17:00 of the
n-th working day after the start day.
"""

from datetime import UTC, date, datetime

import pytest

from bot.dossiers.calendar import Swap, WorkingCalendar, load_swaps
from bot.dossiers.model import VN_TZ
from procedures_catalog.schema import ProcessingTime, TimeUnit

CAL = WorkingCalendar()


def vn(y, m, d, hh=9, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=VN_TZ)


def wd(n):
    return ProcessingTime(value=n, unit=TimeUnit.WORKING_DAYS)


def local(moment):
    return moment.astimezone(VN_TZ)


def test_tet_2026_days_are_not_working_days():
    # holidays.Vietnam: 16-20 Feb 2026 (Mon-Fri) are Tết; 14-15 and 21-22 are weekends.
    for day in range(14, 23):
        assert not CAL.is_working_day(date(2026, 2, day)), day
    assert CAL.is_working_day(date(2026, 2, 13))  # Friday before Tết
    assert CAL.is_working_day(date(2026, 2, 23))  # Monday after Tết


def test_three_working_days_across_tet_2026():
    # Received Thu 12 Feb 09:00 -> start day Thu 12. Working days after it: Fri 13 (1),
    # [Sat 14 - Sun 22 weekend and Tết], Mon 23 (2), Tue 24 (3) -> due Tue 24 Feb 17:00 ICT.
    due = CAL.due_at(vn(2026, 2, 12), wd(3))
    assert due == datetime(2026, 2, 24, 10, 0, tzinfo=UTC)  # 17:00 ICT = 10:00 UTC
    assert due.tzinfo is UTC


def test_receipt_after_cutoff_before_tet_counts_from_monday_23():
    # Received Fri 13 Feb 17:30, after the 17:00 cut-off -> start day is the next working day,
    # Mon 23 Feb. Then Tue 24 (1), Wed 25 (2), Thu 26 (3) -> due Thu 26 Feb.
    received = vn(2026, 2, 13, 17, 30)
    assert CAL.start_day(received) == date(2026, 2, 23)
    assert local(CAL.due_at(received, wd(3))) == vn(2026, 2, 26, 17)
    # The same Friday at 16:59 starts on Fri 13: Mon 23 (1), Tue 24 (2), Wed 25 (3).
    assert local(CAL.due_at(vn(2026, 2, 13, 16, 59), wd(3))) == vn(2026, 2, 25, 17)


def test_receipt_time_is_read_in_vietnam_time():
    # 10:30 UTC on Fri 13 Feb is 17:30 ICT: after the cut-off, so it starts on Mon 23 Feb.
    assert CAL.start_day(datetime(2026, 2, 13, 10, 30, tzinfo=UTC)) == date(2026, 2, 23)
    # A naive datetime is Vietnam time (what CSV exports hold): 17:30 -> Mon 23 as well.
    assert CAL.start_day(datetime(2026, 2, 13, 17, 30)) == date(2026, 2, 23)


def test_reunification_and_labour_day_2026():
    # Received Wed 29 Apr 10:00 -> start Wed 29. Thu 30/4 and Fri 1/5 are holidays, Sat 2 and
    # Sun 3 the weekend: Mon 4 May (1), Tue 5 May (2) -> due Tue 5 May 17:00.
    assert not CAL.is_working_day(date(2026, 4, 30))
    assert not CAL.is_working_day(date(2026, 5, 1))
    assert local(CAL.due_at(vn(2026, 4, 29, 10), wd(2))) == vn(2026, 5, 5, 17)


def test_hung_kings_day_2026_observed_on_monday():
    # Giỗ Tổ (10/3 lunar) falls on Sun 26 Apr 2026 and is observed on Mon 27 Apr.
    assert not CAL.is_working_day(date(2026, 4, 27))
    # Received Fri 24 Apr 09:00, 1 working day: Sat 25, Sun 26, Mon 27 off -> due Tue 28 Apr.
    assert local(CAL.due_at(vn(2026, 4, 24), wd(1))) == vn(2026, 4, 28, 17)


def test_2025_swap_saturday_worked_friday_off():
    # Official swap: Sat 26 Apr 2025 is worked so that Fri 2 May 2025 is off.
    assert CAL.is_working_day(date(2025, 4, 26))
    assert not CAL.is_working_day(date(2025, 5, 2))
    # Received Fri 25 Apr 2025 09:00, 1 working day -> the next working day is Sat 26 Apr.
    assert local(CAL.due_at(vn(2025, 4, 25), wd(1))) == vn(2025, 4, 26, 17)
    # Received Tue 29 Apr 2025, 2 working days: Wed 30/4, Thu 1/5 holidays, Fri 2/5 swapped off,
    # weekend 3-4 -> Mon 5 May (1), Tue 6 May (2).
    assert local(CAL.due_at(vn(2025, 4, 29), wd(2))) == vn(2025, 5, 6, 17)


def test_2026_national_day_swap():
    # Sat 22 Aug 2026 worked in exchange for Mon 31 Aug 2026 off (then 1-2 Sep holidays).
    assert CAL.is_working_day(date(2026, 8, 22))
    assert not CAL.is_working_day(date(2026, 8, 31))


def test_swaps_table_overrides_the_weekday_rule():
    # A hypothetical swap (not an official one, for the test only): Fri 2 Jan 2026 off,
    # Sat 10 Jan 2026 worked.
    cal = WorkingCalendar(swaps=[Swap(date(2026, 1, 2), date(2026, 1, 10), "test only")])
    assert not cal.is_working_day(date(2026, 1, 2))
    assert cal.is_working_day(date(2026, 1, 10))
    assert CAL.is_working_day(date(2026, 1, 2))  # the bundled table has no such row
    assert not CAL.is_working_day(date(2026, 1, 10))


def test_configurable_cutoff_hour():
    # Wed 4 Mar 2026. With a 15:00 cut-off a 15:00 receipt starts on Thu 5 Mar; 14:59 on Wed 4.
    cal = WorkingCalendar(cutoff_hour=15)
    assert cal.start_day(vn(2026, 3, 4, 15)) == date(2026, 3, 5)
    assert cal.start_day(vn(2026, 3, 4, 14, 59)) == date(2026, 3, 4)
    # The default cut-off (17:00) keeps 15:00 on the same day.
    assert CAL.start_day(vn(2026, 3, 4, 15)) == date(2026, 3, 4)


def test_closing_hour_is_configurable():
    # Received Wed 4 Mar 09:00, 1 working day -> due Thu 5 Mar at the 16:00 closing hour.
    cal = WorkingCalendar(closing_hour=16)
    assert local(cal.due_at(vn(2026, 3, 4), wd(1))) == vn(2026, 3, 5, 16)


def test_weekends():
    # Sat 7 / Sun 8 Mar 2026 are not working days.
    assert not CAL.is_working_day(date(2026, 3, 7))
    assert not CAL.is_working_day(date(2026, 3, 8))
    # Received Sat 7 Mar 10:00 -> start Mon 9 Mar; 1 working day -> Tue 10 Mar.
    assert CAL.start_day(vn(2026, 3, 7, 10)) == date(2026, 3, 9)
    assert local(CAL.due_at(vn(2026, 3, 7, 10), wd(1))) == vn(2026, 3, 10, 17)
    # Received Fri 6 Mar 09:00 -> start Fri 6; 1 working day -> Mon 9 Mar.
    assert local(CAL.due_at(vn(2026, 3, 6), wd(1))) == vn(2026, 3, 9, 17)


def test_calendar_days_landing_on_sunday_move_to_monday():
    # Received Wed 4 Mar 2026 09:00, 4 calendar days -> Sun 8 Mar -> Mon 9 Mar.
    time = ProcessingTime(value=4, unit=TimeUnit.DAYS)
    assert local(CAL.due_at(vn(2026, 3, 4), time)) == vn(2026, 3, 9, 17)


def test_fractions_hours_and_months():
    # 0.5 working day rounds up to 1: received Wed 4 Mar -> Thu 5 Mar.
    assert local(CAL.due_at(vn(2026, 3, 4), wd(0.5))) == vn(2026, 3, 5, 17)
    # 0 working days: the start day itself.
    assert local(CAL.due_at(vn(2026, 3, 4), wd(0))) == vn(2026, 3, 4, 17)
    # 12 hours = ceil(12/8) = 2 working days: Wed 4 Mar -> Thu 5 (1), Fri 6 (2).
    hours = ProcessingTime(value=12, unit=TimeUnit.HOURS)
    assert local(CAL.due_at(vn(2026, 3, 4), hours)) == vn(2026, 3, 6, 17)
    # 1 month from Fri 30 Jan 2026 -> 28 Feb (clamped; a Saturday) -> Mon 2 Mar.
    month = ProcessingTime(value=1, unit=TimeUnit.MONTHS)
    assert local(CAL.due_at(vn(2026, 1, 30), month)) == vn(2026, 3, 2, 17)


def test_unknown_processing_time_gives_no_deadline():
    assert CAL.due_at(vn(2026, 3, 4), ProcessingTime()) is None
    assert CAL.due_at(vn(2026, 3, 4), ProcessingTime(value=3)) is None  # no unit
    assert CAL.lateness(vn(2026, 3, 4), ProcessingTime(), vn(2026, 12, 31)) is None


def test_working_days_between():
    # Received Thu 12 Feb 09:00 (start Thu 12): by Tue 24 Feb, Fri 13, Mon 23, Tue 24 = 3.
    assert CAL.working_days_between(vn(2026, 2, 12), vn(2026, 2, 24, 8)) == 3
    assert CAL.working_days_between(vn(2026, 2, 12), vn(2026, 2, 12, 16)) == 0
    # Over Tết only Fri 13 counts up to Sun 22.
    assert CAL.working_days_between(vn(2026, 2, 12), vn(2026, 2, 22)) == 1


def test_lateness_from_original_receipt():
    # Received Thu 12 Feb 09:00, 3 working days -> due Tue 24 Feb 17:00 (see above).
    received = vn(2026, 2, 12)
    assert CAL.lateness(received, wd(3), vn(2026, 2, 23, 10)) == "early"  # Mon 23
    assert CAL.lateness(received, wd(3), vn(2026, 2, 24, 16)) == "on_time"  # due day
    assert CAL.lateness(received, wd(3), vn(2026, 2, 24, 17, 30)) == "late"  # after 17:00
    assert CAL.lateness(received, wd(3), vn(2026, 2, 25, 9)) == "late"  # Wed 25
    # A re-sync on Mon 23 Feb must not restart the clock: counted from the re-sync the
    # Wed 25 return would look early (due Thu 26), but from the original receipt it is late.
    assert CAL.lateness(vn(2026, 2, 23, 8), wd(3), vn(2026, 2, 25, 9)) == "early"


def test_is_late():
    due = CAL.due_at(vn(2026, 2, 12), wd(3))
    assert not CAL.is_late(vn(2026, 2, 12), due, vn(2026, 2, 24, 17))  # exactly at the due time
    assert CAL.is_late(vn(2026, 2, 12), due, vn(2026, 2, 24, 17, 1))
    assert not CAL.is_late(vn(2026, 2, 12), None, vn(2026, 12, 31))  # no deadline known
    with pytest.raises(ValueError, match="before received_at"):
        CAL.is_late(vn(2026, 2, 12), due, vn(2026, 2, 11))


def test_bundled_swaps_cite_their_source():
    swaps = load_swaps()
    pairs = {(s.day_off, s.working_day) for s in swaps}
    assert (date(2025, 5, 2), date(2025, 4, 26)) in pairs
    assert (date(2026, 8, 31), date(2026, 8, 22)) in pairs
    assert all(s.source.strip() for s in swaps)


def test_loader_rejects_a_bad_row_with_its_line_number():
    text = (
        "# a comment\n"
        "day_off,working_day,source\n"
        "2025-05-02,2025-04-26,some document\n"
        "2026-02-30,2026-02-21,impossible date\n"
    )
    with pytest.raises(ValueError, match=r"line 4: bad date"):
        load_swaps(text)
    with pytest.raises(ValueError, match=r"line 2: day_off must be Mon-Fri"):
        load_swaps("day_off,working_day,source\n2026-02-21,2026-02-20,swapped columns\n")
    with pytest.raises(ValueError, match=r"line 2: source is empty"):
        load_swaps("day_off,working_day,source\n2025-05-02,2025-04-26,\n")
    with pytest.raises(ValueError, match=r"line 1: expected header"):
        load_swaps("2025-05-02,2025-04-26,x\n")
