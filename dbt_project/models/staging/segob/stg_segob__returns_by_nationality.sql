-- Bulletin table 3.2.4 (foreigners returned by Mexico), one row per nationality, return type
-- and month, as the newest workbook carrying the month published it.

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'segob_returns_by_nationality'), 'month') }}

),

renamed as (

    select
        cast(month as date) as month,
        continent,
        region,
        country as nationality_segob,
        iso3 as nationality_iso3,
        return_type,
        cast(events as bigint) as events,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_month
    from newest

)

select * from renamed
