-- A small date spine: one row per day of the first quarter of 2024.
select
    cast(day as date) as calendar_date,
    extract(year from day) as calendar_year,
    extract(month from day) as calendar_month,
    extract(isodow from day) as iso_day_of_week
from generate_series(timestamp '2024-01-01', timestamp '2024-03-31', interval 1 day) as t(day)
