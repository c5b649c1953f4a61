-- The HHS/DHS daily report PDFs, one row per data day, as the newest report carrying the day
-- published it (a re-issued PDF supersedes the earlier one), renamed like stg_hhs__uc_daily.

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'hhs_uc_daily_report'), 'report_date') }}

),

ranked as (

    -- One PDF holds one data day; should a file ever hold a day twice, its first row wins.
    select
        *,
        row_number() over (partition by report_date order by source_row) as copy_rank
    from newest

),

renamed as (

    select
        report_date,
        release_date,
        apprehended_placed_in_cbp_custody as cbp_apprehended_excl_mexico,
        in_cbp_custody as cbp_in_custody,
        transferred_out_of_cbp_custody as cbp_transferred_out,
        in_hhs_care as hhs_in_care,
        discharged_from_hhs_care as hhs_discharged,
        apprehended_placed_in_cbp_custody_30day_avg as cbp_apprehended_excl_mexico_30day_avg,
        in_cbp_custody_30day_avg as cbp_in_custody_30day_avg,
        transferred_out_of_cbp_custody_30day_avg as cbp_transferred_out_30day_avg,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_date
    from ranked
    where copy_rank = 1

)

select * from renamed
