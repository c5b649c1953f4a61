-- One row per calendar month from var('calendar_start') to the current month: the calendar and
-- US fiscal attributes every monthly mart joins on, and how much of the month Title 42 covered.

with months as (

    select cast(generate_series as date) as month
    from generate_series(
            date '{{ var("calendar_start") }}',
            cast(date_trunc('month', current_date) as date),
            interval 1 month
        )

),

attributes as (

    select
        month,
        cast(month + interval 1 month - interval 1 day as date) as month_end,
        year(month) as calendar_year,
        month(month) as month_of_year,
        strftime(month, '%Y-%m') as month_label,
        -- US federal fiscal year: FY2021 runs from 2020-10-01 to 2021-09-30.
        year(month) + case when month(month) >= 10 then 1 else 0 end as fiscal_year,
        (month(month) + 2) % 12 + 1 as fiscal_month_of_year,
        ((month(month) + 2) % 12) // 3 + 1 as fiscal_quarter,
        day(month + interval 1 month - interval 1 day) as days_in_month
    from months

),

title_42 as (

    select
        *,
        greatest(
            0,
            date_diff(
                'day',
                greatest(month, date '{{ var("title_42_start") }}'),
                least(month_end, date '{{ var("title_42_end") }}')
            ) + 1
        ) as title_42_days_in_month
    from attributes

)

select
    *,
    title_42_days_in_month > 0 as title_42_in_force
from title_42
