-- The HHS/DHS daily flows summed by calendar month over the days that were published.

with daily as (

    select * from {{ ref('int_hhs__uc_daily_flows') }}

)

select
    month,
    count(cbp_apprehended_excl_mexico) as days_reported,
    cast(sum(cbp_apprehended_excl_mexico) as bigint) as apprehended_excl_mexico_reported_days,
    cast(sum(cbp_transferred_out) as bigint) as transferred_out_reported_days,
    cast(sum(hhs_discharged) as bigint) as discharged_reported_days,
    avg(cbp_apprehended_excl_mexico) as apprehended_excl_mexico_per_reported_day,
    list_sort(list(distinct daily_source)) as daily_sources,
    list_sort(list(distinct source_file)) as source_files,
    max(vintage) as vintage
from daily
group by month
